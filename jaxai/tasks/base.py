"""The contract every task fulfils for the training loop, and the state most tasks train."""

from __future__ import annotations

from typing import Any, Callable, Mapping, NamedTuple, Protocol, Union

import flax.struct
import jax
import numpy as np
import optax

PyTree = Any
Batch = dict[str, jax.Array]
Metrics = dict[str, jax.Array]
# What `visualize` and `sample` hand back: images [N, H, W, C] with values in [0, 1], or text.
Picture = Union[np.ndarray, str]

# How an eval output combines over batches: 'sum' adds, 'max'/'min' keep the extreme, 'first' keeps
# the first batch's value (e.g. images to show), 'concat' stacks along the leading (batch) axis.
REDUCTIONS = ("sum", "max", "min", "first", "concat")


class SampleOptions(NamedTuple):
    """What `jaxai sample` asks for; each task reads the fields that mean something to it."""

    num: int = 0  # Samples to make; 0 -> the task's default (1 text, 64 images).
    prompt: str = "\n"  # Text models: what the generation continues.
    num_tokens: int = 500  # Text models: tokens to generate.
    temperature: float = 0.8  # Softmax temperature; 0 means greedy.
    top_k: int = 200  # Keep the k most likely tokens (0 keeps all).


class InitFn(Protocol):
    def __call__(self, rng: jax.Array, batch: Batch) -> PyTree: ...


class TrainStepFn(Protocol):
    def __call__(self, state: PyTree, batch: Batch, rng: jax.Array) -> tuple[PyTree, Metrics]: ...


class EvalStepFn(Protocol):
    def __call__(self, state: PyTree, batch: Batch, rng: jax.Array) -> Metrics: ...


class Task(NamedTuple):
    """Pure functions the loop jits, and the facts it reports; the loop never knows which family runs.

    The loop derives every rng from config.seed and the step: `train_step` gets a key per step,
    `eval_step` a key per (evaluation step, batch index), `visualize` and `sample` one key each.
    A task whose data comes from its own state (environments, a replay buffer) runs with
    `data.name='none'`: its batches are empty dicts. Every state has a scalar `step` (steps taken).
    """

    init: InitFn  # (rng, example batch) -> state; parameters may be boxed with logical axis names.
    train_step: TrainStepFn  # (state, batch, rng) -> (state, metrics); metrics are scalar means.
    eval_step: EvalStepFn  # (state, batch, rng) -> outputs, reduced over batches as `reductions` says.
    summarize: Callable[[dict[str, np.ndarray]], dict[str, Any]]  # Host: reduced outputs -> metrics.
    reductions: Mapping[str, str] = {}  # Eval output name -> one of REDUCTIONS; unnamed outputs 'sum'.
    headline: str = "loss"  # The train metric shown first on the progress bar.
    # Throughput units per training step, e.g. {"examples": 64} or {"examples": 12, "tokens": 768};
    # the loop logs `<unit>_per_s` for each, the first on the progress bar.
    units_per_step: Mapping[str, float] = {}
    flops_per_step: float = 0.0  # Model FLOPs of one training step (0: no utilisation figure).
    networks: Callable[[PyTree], dict[str, PyTree]] | None = None  # state -> {name: params}; default state.params.
    # Host, at each eval: (state, reduced eval outputs, rng) -> {name: Picture} to log.
    visualize: Callable[[PyTree, dict[str, np.ndarray], jax.Array], dict[str, Picture]] | None = None
    sample: Callable[[PyTree, jax.Array, SampleOptions], Picture | list[str]] | None = None  # `jaxai sample`.
    # Files made from the final state (process 0): (state, workdir) -> {name: path}, e.g. {'episode_gif': ...}; the loop reports them.
    export: Callable[[PyTree, str], dict[str, str]] | None = None


def network_parameters(task: Task, state: PyTree) -> dict[str, PyTree]:
    """The parameters of each network the state holds (never optimizer moments or statistics)."""
    if task.networks is not None:
        return task.networks(state)
    return {"model": state.params}


def parameter_counts(task: Task, state: PyTree) -> dict[str, int]:
    """Parameters per network; works on abstract states (ShapeDtypeStructs) too."""
    return {
        name: int(sum(np.prod(leaf.shape, dtype=np.int64) for leaf in jax.tree.leaves(params)))
        for name, params in network_parameters(task, state).items()
    }


@flax.struct.dataclass
class TrainState:
    """One network and its optimizer: step, params, opt_state and model_state (e.g. batch_stats)."""

    step: jax.Array
    params: PyTree
    opt_state: optax.OptState
    model_state: PyTree

    def apply_gradients(self, grads: PyTree, tx: optax.GradientTransformation, **changes) -> "TrainState":
        updates, opt_state = tx.update(grads, self.opt_state, self.params)
        params = optax.apply_updates(self.params, updates)
        return self.replace(step=self.step + 1, params=params, opt_state=opt_state, **changes)


def split_variables(variables: dict[str, PyTree]) -> tuple[PyTree, PyTree]:
    """Linen variables -> (params, every other collection)."""
    variables = dict(variables)
    params = variables.pop("params")
    return params, variables
