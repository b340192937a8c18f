"""ResNet-50 on ImageNet (ILSVRC 2012): the standard 90-epoch recipe (Goyal et al. 2017).

    jaxai train --config experiments/imagenet_resnet50.py --workdir runs/imagenet_resnet50 \
        --config.data.data_dir DIR_WITH_ILSVRC2012_img_train.tar_AND_ILSVRC2012_img_val.tar

Not measured here: no ImageNet on these machines, so its accuracy and time are not in bench/RESULTS.md.
The data is the two original archives from image-net.org, prepared once into the TFDS dir (hours;
jaxai.data.tfds_images). jaxai holds a split in memory, as IMAGE_SIZE x IMAGE_SIZE arrays (shorter side
resized, center crop): the full training set takes ~180 GiB, and the loader refuses a split over half the
machine's memory, so on smaller machines train on a slice (--config.data.train_split='train[:10%]').
The stored arrays are fixed crops, so the augmentation is random horizontal flips only, not the recipe's
random-resized crops: expect less than its published ~76% top-1.
ResNet-50 (models.resnet: bottleneck blocks, 3-4-6-3) with the ImageNet stem (7x7/2 conv, 3x3/2 max-pool),
zero-initialised last BN scale per block. SGD with Nesterov momentum 0.9, batch 256, learning rate
0.1 x batch / 256, linear warm-up over WARMUP_EPOCHS then cosine decay to 0, L2 1e-4 on kernels
(not on biases and BN), label smoothing 0.1, EPOCHS epochs; evaluated on the validation set.
Variants: `:smoke` is a seconds-long run of a narrow two-stage bottleneck version on synthetic data, for tests.
"""

import os
import runpy

import ml_collections

from jaxai.config import base_config

EPOCHS, WARMUP_EPOCHS, BATCH_SIZE, IMAGE_SIZE = 90, 5, 256, 224
STEPS_PER_EPOCH = 1_281_167 // BATCH_SIZE  # The data pipeline drops the last partial batch.


def get_config(variant: str = "") -> ml_collections.ConfigDict:
    if variant not in ("", "smoke"):
        raise ValueError(f"Unknown variant {variant!r}; this experiment has '' and 'smoke'.")
    config = base_config(task="classification", model="resnet")
    config.data.name = "imagenet2012"
    config.data.image_size = IMAGE_SIZE
    config.data.eval_split = "validation"
    config.data.test_split = "validation"  # The test set's labels are not public.
    config.data.batch_size = BATCH_SIZE
    config.data.eval_batch_size = 500
    config.model.depth = 50
    config.model.stem = "imagenet"
    config.task.label_smoothing = 0.1
    config.task.augment_flip = True
    config.optimizer.name = "nesterov"
    config.optimizer.momentum = 0.9
    config.optimizer.learning_rate = 0.1 * BATCH_SIZE / 256
    config.optimizer.l2 = 1e-4
    config.optimizer.schedule.name = "cosine"
    config.optimizer.schedule.warmup_steps = WARMUP_EPOCHS * STEPS_PER_EPOCH
    config.train.num_epochs = EPOCHS
    config.train.log_every = 100
    config.train.eval_every = 0  # Once per epoch.
    if variant == "smoke":
        runpy.run_path(os.path.join(os.path.dirname(__file__), "fashion_mnist_resnet.py"))["smoke"](config)
        config.data.eval_split = config.data.test_split = "test"
        config.model.block = "bottleneck"
        config.optimizer.schedule.warmup_steps = 5
    return config
