"""A global forecaster: an LSTM encoder over the input window, attention over its states, the whole horizon at once.

Layout: each input step's features (log of the scaled value, it relative to the last input, and
the observed mask) -> Dense(embed) -> `num_layers` LSTM layers -> encoder states [B, L, H]. One
query per horizon step (a learned embedding plus a projection of the last state) attends over the
states (multi-head, padded steps masked) -> [context, query] -> MLP -> per horizon step one value
per output: the point forecast and, with `quantiles`, one per quantile level. Outputs are in the
window's scaled units: the model predicts log(y / scale) relative to the last scaled input, so an
untrained model starts near the naive forecast. `members` > 1 runs that many independently
initialised networks in one program (an ensemble, as N-BEATS and the M4 winners used).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxai.models.rnn import LSTM

LOG_FLOOR = 1e-3  # Scaled values are floored here before the log (series may touch zero).


def _dense(features: int, axes: tuple[str | None, str | None], dtype: Any, name: str) -> nn.Dense:
    return nn.Dense(features, dtype=dtype, name=name,
                    kernel_init=nn.with_logical_partitioning(nn.initializers.lecun_normal(), axes),
                    bias_init=nn.with_logical_partitioning(nn.initializers.zeros_init(), (axes[1],)))


class ForecasterNet(nn.Module):
    """One network: (inputs [B, L] scaled, input_mask [B, L][, history_summary [B, S]]) -> forecasts [B, horizon, 1 + len(quantiles)] scaled."""

    horizon: int = 1  # Set from the data.
    hidden_size: int = 128
    num_layers: int = 1
    embed_dim: int = 32
    num_heads: int = 4
    mlp_dim: int = 128
    quantiles: tuple[float, ...] = ()  # Quantile levels in (0, 1) forecast beside the point forecast (pinball loss).
    dtype: Any = "float32"  # Compute dtype; parameters stay float32.

    @nn.compact
    def __call__(self, inputs: jax.Array, input_mask: jax.Array, history_summary: jax.Array | None = None) -> jax.Array:
        return network(self, inputs, input_mask, history_summary)


class LSTMForecaster(ForecasterNet):
    """`members` ForecasterNets: (inputs [M, B, L], input_mask [M, B, L][, history_summary [M, B, S]]) -> [M, B, horizon, Q].

    Member m sees row m of each input. One member is the network itself (the same parameters as
    ForecasterNet); more are `nn.vmap`ped over their parameters, each initialised from its own key.
    """

    members: int = 1

    @nn.compact
    def __call__(self, inputs: jax.Array, input_mask: jax.Array, history_summary: jax.Array | None = None) -> jax.Array:
        if self.members == 1:
            return network(self, inputs[0], input_mask[0], None if history_summary is None else history_summary[0])[None]
        ensemble = nn.vmap(ForecasterNet, variable_axes={"params": 0}, split_rngs={"params": True}, in_axes=0, out_axes=0,
                           axis_size=self.members, metadata_params={nn.PARTITION_NAME: None})
        network_fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(ForecasterNet)
                          if f.init and f.name not in ("parent", "name")}
        return ensemble(**network_fields, name="members")(inputs, input_mask, history_summary)


def network(module: ForecasterNet, inputs: jax.Array, input_mask: jax.Array, history_summary: jax.Array | None) -> jax.Array:
    """The network's body, called inside `module`'s compact method (its submodules and parameters are the module's)."""
    m = module
    log_values = jnp.log(jnp.maximum(inputs, LOG_FLOOR)) * input_mask  # [B, L]
    last = log_values[:, -1:]  # [B, 1]: the latest input, which every window observes.
    features = jnp.stack([(log_values - last) * input_mask, input_mask, log_values], axis=-1)  # [B, L, 3]
    x = nn.gelu(_dense(m.embed_dim, (None, "embed"), m.dtype, "input_embed")(features))  # [B, L, E]
    for layer in range(m.num_layers):
        carry, x = LSTM(m.hidden_size, dtype=m.dtype, name=f"lstm_{layer}")(x)  # x [B, L, H]
    state = carry[1]  # [B, H]: the last step's hidden state.
    if history_summary is not None:  # [B, S]: what the whole history says beyond the window (series.history_summary).
        state = jnp.concatenate([state, history_summary.astype(state.dtype)], axis=-1)
    queries = m.param("horizon_queries", nn.with_logical_partitioning(nn.initializers.normal(0.02), (None, "embed")),
                      (m.horizon, m.hidden_size), jnp.float32)
    query = queries[None] + _dense(m.hidden_size, ("mlp", "embed"), m.dtype, "state_query")(state)[:, None]  # [B, h, H]
    attention_mask = input_mask.astype(bool)[:, None, None, :]  # [B, 1, 1, L]: padded steps get no weight.
    context = nn.MultiHeadDotProductAttention(num_heads=m.num_heads, dtype=m.dtype, name="attention")(
        query, x, mask=attention_mask)  # [B, h, H]
    y = jnp.concatenate([context, query], axis=-1)  # [B, h, 2H]
    y = nn.gelu(_dense(m.mlp_dim, ("embed", "mlp"), m.dtype, "mlp")(y))  # [B, h, M]
    outputs = 1 + len(m.quantiles)
    log_ratio = _dense(outputs, ("mlp", None), m.dtype, "head")(y).astype(jnp.float32)  # [B, h, Q]
    return jnp.exp(log_ratio + last[:, :, None].astype(jnp.float32))  # [B, h, Q] scaled forecasts
