"""Transfer learning: start from another run's weights, freeze parameters, or train LoRA adapters.

Three config sections, all off by default:
- `init_from`: `path` is a workdir (its latest checkpoint) or one checkpoint directory
  (`WORKDIR/checkpoints/STEP`); `include` / `exclude` are regular expressions over parameter paths
  ('Dense_0/kernel', 'BasicBlock_1/BatchNorm_0/scale'), searched anywhere in the path; '' includes all,
  excludes none. The included parameters and their batch-norm statistics are copied; a parameter
  whose shape differs (a new head for another number of classes) keeps its fresh initialisation and
  is reported, provided all such parameters sit in one module (the head); otherwise the models are
  incompatible and the error names both shapes. Read once, when a run starts: a run that resumes
  its own checkpoint never reads it again.
- `optimizer.freeze`: parameters whose path the expression matches get no updates (`optim`: Optax
  `multi_transform` with `set_to_zero`), and their batch-norm statistics stay as loaded.
- `lora`: `rank` > 0 wraps the model so that each kernel whose path matches `targets` is used as
  W + (alpha / rank) A B, A [in, rank] ~ N(0, 1/in), B [rank, out] = 0 (Hu et al. 2021); W and every
  other parameter are frozen (but those `train_base` names, e.g. a new head), A and B train. Dense
  kernels qualify, the GPT's attention and MLP projections among them (2-D kernels; a kernel of more
  axes takes its first as the input); convolution kernels are refused. The state's params are then
  {'base': the model's, 'lora': the adapters}; `merged_params` folds them into plain model params
  for export, which give exactly the adapted forward pass.
"""

from __future__ import annotations

import os
import re
from typing import Any

import flax.linen as nn
import flax.traverse_util
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from jaxai import optim
from jaxai.optim import path_string
from jaxai.errors import ConfigError

PyTree = Any
BASE, LORA = "base", "lora"


def default_init_from() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.path = ""  # A workdir or a checkpoint directory; '' = train from scratch.
    config.include = ""  # Regex over parameter paths to load; '' = all.
    config.exclude = ""  # Regex over parameter paths not to load; '' = none.
    return config


def default_lora() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.rank = 0  # Rank of the adapters; 0 = no LoRA.
    config.alpha = 0.0  # Scale numerator: the update is (alpha / rank) A B; 0 -> alpha = rank.
    config.targets = "Dense"  # Regex over kernel paths to adapt, e.g. 'Dense' or 'attention|mlp'.
    config.train_base = ""  # Regex of base parameters that still train in full (e.g. a new head); '' = none.
    return config


def _flat(tree: PyTree) -> dict[str, Any]:
    return {"/".join(map(str, key)): value for key, value in flax.traverse_util.flatten_dict(tree).items()}


def _unflat(flat: dict[str, Any]) -> PyTree:
    return flax.traverse_util.unflatten_dict({tuple(key.split("/")): value for key, value in flat.items()})


# ---------------------------------------------------------------------------------------------
# Freezing (optim.make_optimizer applies optimizer.freeze; LoRA adds its base weights).


def make_optimizer(config: ml_collections.ConfigDict, total_steps: int) -> optax.GradientTransformation:
    """config.optimizer's optimizer; with LoRA, the base weights frozen as well."""
    return optim.make_optimizer(config.optimizer, total_steps, frozen=lora_frozen_pattern(config))


def lora_frozen_pattern(config: ml_collections.ConfigDict) -> str:
    """With LoRA: every base weight but those lora.train_base names; else ''."""
    if not lora_enabled(config):
        return ""
    keep = str(config.lora.train_base)
    return f"^{BASE}/(?!.*(?:{keep}))" if keep else f"^{BASE}/"


def freeze_pattern(config: ml_collections.ConfigDict) -> str:
    """The expression of the parameters that do not train: optimizer.freeze, and LoRA's base weights."""
    return optim.any_of(str(config.optimizer.freeze), lora_frozen_pattern(config))


def keep_frozen_statistics(config: ml_collections.ConfigDict, old: PyTree, new: PyTree) -> PyTree:
    """`new` model state (e.g. batch_stats), with the leaves of frozen modules taken from `old`.

    A statistic is frozen when the freeze pattern matches its module's parameter paths: the pattern
    is tried on the path with the statistic's name replaced by 'scale' (BatchNorm's own parameter).
    """
    pattern = freeze_pattern(config)
    if not pattern or not new:
        return new
    base = f"{BASE}/" if lora_enabled(config) else ""

    def pick(path, old_leaf, new_leaf):
        module = path_string(path[1:-1])  # Drop the collection name and the statistic's name.
        return old_leaf if re.search(pattern, f"{base}{module}/scale") else new_leaf

    return jax.tree_util.tree_map_with_path(pick, old, new)


# ---------------------------------------------------------------------------------------------
# LoRA.


def lora_enabled(config: ml_collections.ConfigDict) -> bool:
    return "lora" in config and int(config.lora.rank) > 0


def is_lora_state(state: Any) -> bool:
    """Whether a state's params are LoRA's {'base', 'lora'} (the task wrapped its model)."""
    params = getattr(state, "params", None)
    return isinstance(params, dict) and set(params) == {BASE, LORA}


class LoRAModel:
    """A linen model whose targeted kernels train as low-rank updates; `init` and `apply` as the model's."""

    def __init__(self, model: Any, rank: int, alpha: float, targets: str):
        if rank < 1:
            raise ConfigError(f"lora.rank={rank} must be >= 1 (0 turns LoRA off).")
        self.model, self.rank, self.scale, self.targets = model, rank, (alpha or rank) / rank, targets

    def __getattr__(self, name: str) -> Any:  # Fields such as latent_dim or vocab_size.
        return getattr(self.model, name)

    def init(self, rngs: Any, *args, **kwargs) -> dict[str, PyTree]:
        variables = dict(self.model.init(rngs, *args, **kwargs))
        base = variables["params"]
        key = rngs["params"] if isinstance(rngs, dict) else rngs
        variables["params"] = {BASE: base, LORA: init_adapters(base, self.targets, self.rank, key)}
        return variables

    def apply(self, variables: dict[str, PyTree], *args, **kwargs) -> Any:
        params = variables["params"]
        return self.model.apply({**variables, "params": merge(params[BASE], params[LORA], self.scale)}, *args, **kwargs)


def init_adapters(params: PyTree, targets: str, rank: int, key: jax.Array) -> PyTree:
    """{kernel path: {'a': [in, rank] ~ N(0, 1/in), 'b': zeros [rank, out]}} for each targeted kernel."""
    flat = _flat(nn.unbox(params))
    chosen = {path: kernel for path, kernel in flat.items()
              if path.endswith("kernel") and re.search(targets, path) and np.ndim(kernel) >= 2}
    if not chosen:
        kernels = [path for path in flat if path.endswith("kernel")]
        raise ConfigError(
            f"lora.targets={targets!r} matches no Dense or attention kernel; kernels here: {kernels[:6]}"
            f"{' ...' if len(kernels) > 6 else ''}. Convolution kernels cannot take LoRA adapters."
        )
    adapters = {}
    for index, (path, kernel) in enumerate(sorted(chosen.items())):
        fan_in, fan_out = _split_axes(kernel.shape)
        if len(kernel.shape) == 4:  # [kh, kw, in, out]: a convolution.
            raise ConfigError(f"lora.targets={targets!r} matches the convolution kernel {path}; LoRA adapts Dense "
                              "and attention kernels only: narrow the expression.")
        a = jax.random.normal(jax.random.fold_in(key, index), (fan_in, rank), jnp.float32) / np.sqrt(fan_in)
        adapters[path] = {"a": a, "b": jnp.zeros((rank, fan_out), jnp.float32)}
    return _unflat({f"{path}/{name}": value for path, pair in adapters.items() for name, value in pair.items()})


def _split_axes(shape: tuple[int, ...]) -> tuple[int, int]:
    """(fan in, fan out) of a Dense kernel: the first axis is the input, all later axes the output."""
    return shape[0], int(np.prod(shape[1:]))


def merge(base: PyTree, adapters: PyTree, scale: float) -> PyTree:
    """Model params with W + scale * A B for each adapted kernel (reshaped to the kernel's shape)."""
    flat = _flat(base)
    for path, pair in _flat_pairs(adapters).items():
        kernel = flat[path]
        flat[path] = kernel + (scale * pair["a"] @ pair["b"]).reshape(kernel.shape).astype(kernel.dtype)
    return _unflat(flat)


def _flat_pairs(adapters: PyTree) -> dict[str, dict[str, jax.Array]]:
    pairs: dict[str, dict[str, jax.Array]] = {}
    for path, value in _flat(adapters).items():
        kernel_path, name = path.rsplit("/", 1)
        pairs.setdefault(kernel_path, {})[name] = value
    return pairs


def merged_params(config: ml_collections.ConfigDict, params: PyTree) -> PyTree:
    """Plain model params from a state's params: LoRA adapters folded into their kernels."""
    if not lora_enabled(config):
        return params
    return merge(params[BASE], params[LORA], (float(config.lora.alpha) or int(config.lora.rank)) / int(config.lora.rank))


def wrap_model(config: ml_collections.ConfigDict, model: Any) -> Any:
    """The model, or its LoRA-adapted form when config.lora.rank > 0."""
    if not lora_enabled(config):
        return model
    return LoRAModel(model, int(config.lora.rank), float(config.lora.alpha), str(config.lora.targets))


# ---------------------------------------------------------------------------------------------
# Loading another run's weights.


def checkpoint_directory(path: str) -> str:
    """The checkpoint a path names: a step directory itself, or a workdir's latest."""
    path = os.path.abspath(os.path.expanduser(path))
    if os.path.isdir(os.path.join(path, "checkpoints")):
        steps = [int(name) for name in os.listdir(os.path.join(path, "checkpoints")) if name.isdigit()]
        if steps:
            return os.path.join(path, "checkpoints", str(max(steps)))
    if os.path.isdir(os.path.join(path, "state")):
        return path
    raise ConfigError(
        f"init_from.path={path!r} is neither a workdir with checkpoints nor a checkpoint directory "
        "(WORKDIR/checkpoints/STEP): point it at a finished run."
    )


def read_checkpoint(path: str) -> dict[str, PyTree]:
    """{'params': ..., 'model_state': ...} (numpy arrays) of the checkpoint `path` names."""
    import orbax.checkpoint as ocp

    directory = checkpoint_directory(path)
    with ocp.StandardCheckpointer() as checkpointer:
        state = checkpointer.restore(os.path.join(directory, "state"))
    if not isinstance(state, dict) or "params" not in state:
        raise ConfigError(f"init_from.path={path!r}: the checkpoint holds no 'params' (a GAN's or other multi-network "
                          "state); init_from loads single-network runs.")
    return {"params": state["params"], "model_state": state.get("model_state") or {}}


def load_pretrained(config: ml_collections.ConfigDict, state: Any) -> tuple[Any, dict[str, Any]]:
    """`state` with the included parameters (and their statistics) of config.init_from; and a report."""
    section = config.init_from
    source = read_checkpoint(section.path)
    lora = lora_enabled(config)
    params = state.params[BASE] if lora else state.params
    new_params, report = copy_matching(params, source["params"], section.include, section.exclude, "params")
    new_model_state = state.model_state
    if state.model_state:
        new_model_state, _ = copy_matching(state.model_state, source["model_state"], section.include, section.exclude,
                                           "model_state", statistics=True)
    if lora:
        new_params = {BASE: new_params, LORA: state.params[LORA]}
    report["path"] = checkpoint_directory(section.path)
    return state.replace(params=new_params, model_state=new_model_state), report


def trainable_parameters(config: ml_collections.ConfigDict, params: PyTree) -> int:
    """Parameters the optimizer updates (all but the frozen ones); works on abstract params."""
    pattern = freeze_pattern(config)
    labels = optim.frozen_labels(params, pattern) if pattern else jax.tree.map(lambda _: "trained", params)
    return int(sum(np.prod(leaf.shape, dtype=np.int64)
                   for leaf, label in zip(jax.tree.leaves(params), jax.tree.leaves(labels)) if label == "trained"))


def export_merged(config: ml_collections.ConfigDict):
    """With LoRA, a Task.export writing the merged model params to WORKDIR/export/merged_params (Orbax); else None."""
    if not lora_enabled(config):
        return None

    def export(state: Any, workdir: str) -> dict[str, str]:
        import orbax.checkpoint as ocp

        path = os.path.join(os.path.abspath(workdir), "export", "merged_params")
        with ocp.StandardCheckpointer() as checkpointer:
            checkpointer.save(path, merged_params(config, state.params), force=True)
        return {"merged_params": path}

    return export


def copy_matching(target: PyTree, source: PyTree, include: str, exclude: str, what: str,
                  statistics: bool = False) -> tuple[PyTree, dict[str, Any]]:
    """`target` with the leaves of `source` at the same paths; the new head's leaves stay as they are."""
    flat_target, flat_source = _flat(target), _flat(source)
    copied, fresh = [], {}
    for path, leaf in flat_target.items():
        if (include and not re.search(include, path)) or (exclude and re.search(exclude, path)):
            continue
        if path not in flat_source:
            if statistics:
                continue
            raise ConfigError(
                f"init_from: the checkpoint has no {what} '{path}' (its paths look like {list(flat_source)[:4]}); "
                "is it a run of the same model? Narrow init_from.include or set init_from.exclude."
            )
        if tuple(np.shape(flat_source[path])) != tuple(leaf.shape):
            fresh[path] = (tuple(np.shape(flat_source[path])), tuple(leaf.shape))
            continue
        flat_target[path] = jnp.asarray(flat_source[path], leaf.dtype)
        copied.append(path)
    modules = {path.rsplit("/", 1)[0] for path in fresh}
    if len(modules) > 1:
        shapes = "; ".join(f"{path}: checkpoint {a} vs model {b}" for path, (a, b) in sorted(fresh.items())[:4])
        raise ConfigError(
            f"init_from: the checkpoint's model is not this one: {len(fresh)} {what} differ in shape ({shapes}). "
            "Only a new head may differ; use the same architecture or exclude the layers that differ."
        )
    return _unflat(flat_target), {"loaded": len(copied), "new_head": sorted(modules)}
