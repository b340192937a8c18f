"""Transfer learning: init_from, frozen parameters and statistics, LoRA adapters and their merged export,
class subsets for transfer tasks, and the one-line errors of bad settings."""

import os
import shutil

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest

from jaxai import transfer
from jaxai.config import load_config
from jaxai.data.dataset import select_classes, take_per_class
from jaxai.errors import ConfigError
from jaxai.tasks.language_model import build_lm, logits_of
from jaxai.train.build import INIT_STREAM, build_run, load_pretrained_state, mesh_context, restore_latest
from jaxai.train.loop import train
from run_helpers import interrupted_copy, read_metrics

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CNN_SMOKE = os.path.join(ROOT, "experiments", "mnist_cnn.py:smoke")
RESNET_SMOKE = os.path.join(ROOT, "experiments", "fashion_mnist_resnet.py:smoke")
GPT_LORA_SMOKE = os.path.join(ROOT, "experiments", "shakespeare_char_gpt_lora.py:smoke")


def config_of(path: str, *overrides: str):
    return load_config(path, ["train.progress_bar=False", *overrides])


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory) -> str:
    """A 10-class smoke CNN trained 10 steps: the run others start from."""
    workdir = str(tmp_path_factory.mktemp("pretrained"))
    train(config_of(CNN_SMOKE, "train.num_steps=10"), workdir)
    return workdir


def fresh_and_loaded(config):
    run = build_run(config)
    with mesh_context(run.mesh):
        fresh = run.init(jax.random.key(0), run.example_batch)
    loaded, report = load_pretrained_state(run, fresh)
    return jax.device_get(fresh), jax.device_get(loaded), report


def test_init_from_loads_the_backbone_and_leaves_a_new_head_fresh(pretrained):
    source = jax.device_get(restore_latest(build_run(config_of(CNN_SMOKE)), pretrained)[0])
    fresh, loaded, report = fresh_and_loaded(config_of(CNN_SMOKE, f"init_from.path={pretrained!r}", "data.classes=(0,1,2)"))
    assert report["new_head"] == ["Dense_1"] and report["loaded"] > 0
    for name in ("Conv_0", "Conv_1", "Dense_0"):
        for leaf, expected in zip(jax.tree.leaves(loaded.params[name]), jax.tree.leaves(source.params[name]), strict=True):
            np.testing.assert_array_equal(leaf, expected)
    assert loaded.params["Dense_1"]["kernel"].shape == (32, 3)  # 3 classes now: fresh, as initialised.
    np.testing.assert_array_equal(loaded.params["Dense_1"]["kernel"], fresh.params["Dense_1"]["kernel"])


def test_include_and_exclude_choose_what_is_loaded(pretrained):
    _, loaded, report = fresh_and_loaded(config_of(CNN_SMOKE, f"init_from.path={pretrained!r}", "init_from.include='Conv'"))
    source = jax.device_get(restore_latest(build_run(config_of(CNN_SMOKE)), pretrained)[0])
    assert report["loaded"] == 4  # Two convolutions' kernels and biases.
    np.testing.assert_array_equal(loaded.params["Conv_1"]["kernel"], source.params["Conv_1"]["kernel"])
    assert not np.array_equal(loaded.params["Dense_0"]["kernel"], source.params["Dense_0"]["kernel"])


def test_frozen_parameters_and_statistics_do_not_change(tmp_path):
    base = str(tmp_path / "base")
    train(config_of(RESNET_SMOKE, "train.num_steps=5"), base)
    config = config_of(RESNET_SMOKE, f"init_from.path={base!r}", "optimizer.freeze='^(?!Dense_0/)'", "train.num_steps=5")
    train(config, str(tmp_path / "tuned"))
    before = jax.device_get(restore_latest(build_run(config_of(RESNET_SMOKE, "train.num_steps=5")), base)[0])
    after = jax.device_get(restore_latest(build_run(config), str(tmp_path / "tuned"))[0])
    for name in before.params:
        same = all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(before.params[name]), jax.tree.leaves(after.params[name])))
        assert same == (name != "Dense_0"), name
    for a, b in zip(jax.tree.leaves(before.model_state), jax.tree.leaves(after.model_state), strict=True):
        np.testing.assert_array_equal(a, b)  # Batch-norm statistics of the frozen backbone.
    header = read_metrics(str(tmp_path / "tuned"), "run")[0]
    assert header["num_trainable_parameters"] == after.params["Dense_0"]["kernel"].size + after.params["Dense_0"]["bias"].size
    assert header["init_from"]["loaded"] > 0


def test_a_resumed_run_never_reads_init_from_again(tmp_path, pretrained):
    source = str(tmp_path / "source")
    shutil.copytree(pretrained, source)
    config = config_of(CNN_SMOKE, f"init_from.path={source!r}", "train.num_steps=9", "train.checkpoint_every=3",
                       "train.log_every=1")
    whole, resumed = str(tmp_path / "whole"), str(tmp_path / "resumed")
    train(config, whole)
    interrupted_copy(whole, resumed, checkpoint_step=3)
    shutil.rmtree(source)  # Gone: a resume that read it again would fail.
    train(config, resumed)
    assert [r["loss"] for r in read_metrics(resumed, "train")][-6:] == [r["loss"] for r in read_metrics(whole, "train")][-6:]


class TwoLayers(nn.Module):
    @nn.compact
    def __call__(self, x, *, train=False):
        return nn.Dense(3)(nn.relu(nn.Dense(8)(x)))


def test_lora_with_zero_b_equals_the_base_layer_and_its_merge_equals_the_adapted_pass():
    model = TwoLayers()
    lora = transfer.LoRAModel(model, rank=2, alpha=4.0, targets="Dense_0")
    x = jax.random.normal(jax.random.key(1), (5, 6))
    variables = lora.init(jax.random.key(0), x)
    base = {"params": variables["params"]["base"]}
    np.testing.assert_array_equal(lora.apply(variables, x), model.apply(base, x))
    adapters = jax.tree.map(lambda leaf: leaf + 0.3, variables["params"]["lora"])  # A non-zero B.
    adapted = {"params": {"base": base["params"], "lora": adapters}}
    merged = transfer.merge(base["params"], adapters, 2.0)
    np.testing.assert_allclose(lora.apply(adapted, x), model.apply({"params": merged}, x), rtol=1e-6)
    assert not np.allclose(lora.apply(adapted, x), model.apply(base, x))
    a, b = adapters["Dense_0"]["kernel"]["a"], adapters["Dense_0"]["kernel"]["b"]
    np.testing.assert_allclose(merged["Dense_0"]["kernel"], base["params"]["Dense_0"]["kernel"] + 2.0 * a @ b, rtol=1e-6)


def test_a_lora_run_trains_only_its_adapters_and_exports_the_merged_model(tmp_path):
    config = config_of(GPT_LORA_SMOKE, "train.num_steps=6")
    workdir = str(tmp_path / "lora")
    train(config, workdir)
    run = build_run(config)
    state = jax.device_get(restore_latest(run, workdir)[0])
    with mesh_context(run.mesh):
        start = jax.device_get(run.init(jax.random.fold_in(jax.random.key(config.seed), INIT_STREAM), run.example_batch))
    for a, b in zip(jax.tree.leaves(start.params["base"]), jax.tree.leaves(state.params["base"]), strict=True):
        np.testing.assert_array_equal(a, b)  # The base model is frozen ...
    assert any(not np.array_equal(a, b) for a, b in zip(jax.tree.leaves(start.params["lora"]), jax.tree.leaves(state.params["lora"])))
    with ocp.StandardCheckpointer() as checkpointer:
        merged = checkpointer.restore(os.path.join(workdir, "export", "merged_params"))
    # The exported params run in the plain model and give the adapted model's logits.
    tokens = run.example_batch["inputs"]
    base_model = build_lm(config, run.dataset.info)
    adapted = logits_of(transfer.wrap_model(config, base_model).apply({"params": state.params}, tokens, train=False))
    plain = logits_of(base_model.apply({"params": merged}, tokens, train=False))
    np.testing.assert_allclose(plain, adapted, rtol=1e-5, atol=1e-5)


def test_class_subsets_relabel_and_draw_a_seeded_few_shot_set():
    arrays = {"image": np.arange(40).reshape(40, 1), "label": np.arange(40) % 10}
    selected = select_classes(arrays, (7, 2))
    assert set(selected["label"]) == {0, 1} and len(selected["label"]) == 8
    np.testing.assert_array_equal(selected["image"][selected["label"] == 0, 0] % 10, 7)
    few = take_per_class(selected, 2, seed=0)
    assert np.bincount(few["label"]).tolist() == [2, 2]
    np.testing.assert_array_equal(take_per_class(selected, 2, seed=0)["image"], few["image"])


def test_bad_transfer_settings_are_one_line_errors(tmp_path, pretrained):
    with pytest.raises(ConfigError, match="neither a workdir with checkpoints nor a checkpoint directory"):
        fresh_and_loaded(config_of(CNN_SMOKE, f"init_from.path={str(tmp_path / 'nowhere')!r}"))
    with pytest.raises(ConfigError, match=r"Conv_0/kernel: checkpoint \(3, 3, 1, 8\) vs model \(3, 3, 1, 4\)"):
        fresh_and_loaded(config_of(CNN_SMOKE, f"init_from.path={pretrained!r}", "model.features=(4,16)"))
    with pytest.raises(ConfigError, match="optimizer.freeze='Transformer' matches no parameter"):
        build_run(config_of(CNN_SMOKE, "optimizer.freeze='Transformer'"))
    with pytest.raises(ConfigError, match="lora.targets='Conv' matches the convolution kernel"):
        build_run(config_of(CNN_SMOKE, "lora.rank=2", "lora.targets='Conv'"))
    with pytest.raises(ConfigError, match="matches no Dense or attention kernel"):
        build_run(config_of(CNN_SMOKE, "lora.rank=2", "lora.targets='Embedding'"))
