"""What every task provides to the training loop, and the state most tasks train."""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import flax.struct
import jax
import optax

PyTree = Any
Batch = dict[str, jax.Array]
Metrics = dict[str, jax.Array]


class Task(NamedTuple):
    """Pure functions the loop jits; the loop never needs to know which objective it runs.

    init(rng, batch) -> state                      (parameters may be boxed with logical axis names)
    train_step(state, batch, rng) -> (state, metrics)   metrics are batch means
    eval_step(state, batch) -> sums                 sums over the unmasked examples of the batch
    summarize(sums) -> metrics                      host-side: sums over all eval batches -> metrics
    export(state, workdir) -> None                  optional: files made from the final state
    flops_per_example                               optional: model FLOPs of one training example (MFU)
    """

    init: Callable[[jax.Array, Batch], PyTree]
    train_step: Callable[[PyTree, Batch, jax.Array], tuple[PyTree, Metrics]]
    eval_step: Callable[[PyTree, Batch], Metrics]
    summarize: Callable[[dict[str, Any]], dict[str, Any]]
    export: Callable[[PyTree, str], None] | None = None
    flops_per_example: float = 0.0


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
