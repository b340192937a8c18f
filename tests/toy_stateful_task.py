"""A task whose training data is made inside its state, as an RL task's environments are (tests only).

The state holds online and target parameters of a linear model and the 'observations' the next step
trains on; each step draws fresh observations from its rng. Eval plays 'episodes' with its own rng.
"""

import flax.struct
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from jaxai.tasks.base import SampleOptions, Task

TRUE_WEIGHTS = jnp.arange(1.0, 5.0)  # [4]
NUM_ENVS = 16


def default_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.target_every = 5  # Steps between copies of the online weights into the target weights.
    return config


@flax.struct.dataclass
class ToyState:
    step: jax.Array
    online: jax.Array  # [4]
    target: jax.Array  # [4]
    opt_state: optax.OptState
    observations: jax.Array  # [NUM_ENVS, 4]: the data of the next step, made by the state itself.


def build(config, dataset_info, total_steps) -> Task:
    tx = optax.sgd(0.05)
    target_every = int(config.task.target_every)

    def init(rng, batch):
        online = jnp.zeros((4,))
        return ToyState(step=jnp.zeros((), jnp.int32), online=online, target=online, opt_state=tx.init(online),
                        observations=jax.random.normal(rng, (NUM_ENVS, 4)))

    def train_step(state, batch, rng):
        assert batch == {}, "a stateful task gets empty batches"

        def loss_fn(weights):
            return jnp.mean((state.observations @ weights - state.observations @ TRUE_WEIGHTS) ** 2)

        loss, grads = jax.value_and_grad(loss_fn)(state.online)
        updates, opt_state = tx.update(grads, state.opt_state)
        online = optax.apply_updates(state.online, updates)
        step = state.step + 1
        target = jnp.where(step % target_every == 0, online, state.target)
        return (state.replace(step=step, online=online, target=target, opt_state=opt_state,
                              observations=jax.random.normal(rng, (NUM_ENVS, 4))),
                {"td_loss": loss, "mean_observation": jnp.mean(state.observations)})

    def eval_step(state, batch, rng):
        observations = jax.random.normal(rng, (8, 4))
        returns = -jnp.abs(observations @ state.online - observations @ TRUE_WEIGHTS)  # [8]
        return {"return_sum": jnp.sum(returns), "episodes": jnp.float32(8), "best_return": jnp.max(returns),
                "returns": returns, "first_observations": observations}

    def summarize(outputs):
        return {"return": float(outputs["return_sum"] / outputs["episodes"]), "best_return": float(outputs["best_return"]),
                "num_returns": int(len(outputs["returns"])), "first_shape": list(outputs["first_observations"].shape)}

    def visualize(state, outputs, rng):
        picture = jax.random.uniform(rng, (4, 6, 6, 1))
        return {"noise": np.asarray(picture), "weights": " ".join(f"{w:.3f}" for w in np.asarray(state.online))}

    def sample(state, rng, options: SampleOptions):
        return jax.random.uniform(rng, (options.num or 64, 5, 5, 3)) * jnp.tanh(jnp.sum(state.online))

    return Task(init=init, train_step=train_step, eval_step=eval_step, summarize=summarize,
                reductions={"best_return": "max", "returns": "concat", "first_observations": "first"},
                headline="td_loss", units_per_step={"env_steps": NUM_ENVS},
                networks=lambda state: {"online": state.online, "target": state.target},
                visualize=visualize, sample=sample)
