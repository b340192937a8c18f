"""Transfer learning on Fashion-MNIST: pretrain on classes 0-4, fine-tune on classes 5-9 from 100 labels each.

    jaxai train --config experiments/fashion_mnist_transfer.py:pretrain --workdir runs/fashion_mnist_pretrain
    jaxai train --config experiments/fashion_mnist_transfer.py --workdir runs/fashion_mnist_finetune

Pretraining sees the 30,000 training images of T-shirt/top, trouser, pullover, dress and coat. The
fine-tuning variants see 500 images (100 per class, seeded) of sandal, shirt, sneaker, bag and ankle
boot, relabelled 0-4, and are evaluated on those classes' 5,000 test images:
  ''        full fine-tuning: every weight from the pretrained run (init_from.path) but the head's,
            which is new (exclude 'Dense_1'); all train.
  :frozen   the backbone frozen (its batch-norm statistics too): only the head trains.
  :lora     LoRA adapters of rank 4 on the hidden Dense layer, the new head trained in full,
            everything else frozen.
  :scratch  the same 500 images and recipe without pretrained weights: the baseline.
  :smoke    a seconds-long run on synthetic data, for tests.
Network: the Keras MNIST CNN (Conv32-pool-Conv64-pool-Conv64-Dense64-Dense5) with batch norm after
each convolution; crops and flips; adam with cosine decay. bench/transfer.py runs all five and
bench/RESULTS.md has the figures and trainable-parameter counts.
"""

import ml_collections

from jaxai.config import base_config

PRETRAINED = "runs/fashion_mnist_pretrain"  # Where the :pretrain command above writes.
PRETRAIN_CLASSES, TRANSFER_CLASSES = (0, 1, 2, 3, 4), (5, 6, 7, 8, 9)
HEAD = "Dense_1"  # The CNN's last Dense layer: the classes.


def get_config(variant: str = "") -> ml_collections.ConfigDict:
    config = base_config(task="classification", model="cnn")
    config.data.name = "fashion_mnist"
    config.model.use_batch_norm = True
    config.task.augment_shift = 2
    config.task.augment_flip = True
    config.optimizer.name = "adam"
    config.optimizer.schedule.name = "cosine"
    config.train.log_every = 50
    if variant == "pretrain":
        config.data.classes = PRETRAIN_CLASSES
        config.data.batch_size = 64
        config.optimizer.learning_rate = 3e-3
        config.optimizer.schedule.warmup_steps = 50
        config.train.num_epochs = 3
        return config
    if variant not in ("", "frozen", "lora", "scratch", "smoke"):
        raise ValueError(f"Unknown variant {variant!r}; this experiment has '', 'pretrain', 'frozen', 'lora', "
                         "'scratch' and 'smoke'.")
    config.data.classes = TRANSFER_CLASSES
    config.data.examples_per_class = 100
    config.data.batch_size = 50
    config.optimizer.learning_rate = 1e-3
    config.train.num_epochs = 40  # 10 steps an epoch: 400 steps.
    config.train.eval_every = 100
    config.init_from.path = PRETRAINED
    config.init_from.exclude = HEAD
    if variant == "frozen":
        config.optimizer.freeze = f"^(?!{HEAD}/)"
        config.optimizer.learning_rate = 3e-3
    elif variant == "lora":
        config.lora.rank = 4
        config.lora.targets = "Dense_0"
        config.lora.train_base = HEAD
        config.optimizer.learning_rate = 3e-3
    elif variant == "scratch":
        config.init_from.path = ""
        config.init_from.exclude = ""
    elif variant == "smoke":
        config.data.name = "synthetic_mnist"
        config.data.classes = (0, 1, 2)
        config.data.examples_per_class = 20
        config.data.batch_size = 24  # A multiple of the tests' 8 devices.
        config.data.eval_batch_size = 96
        config.init_from.path = ""
        config.init_from.exclude = ""
        config.lora.rank = 2
        config.lora.targets = "Dense_0"
        config.lora.train_base = HEAD
        config.model.features = (8, 16)
        config.model.pool_after = (True, True)
        config.model.dense_features = (16,)
        config.train.num_steps = 12
        config.train.log_every = 3
        config.train.eval_every = 6
        config.train.checkpoint_every = 6
    return config
