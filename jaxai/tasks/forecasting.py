"""Forecasting: one global model over many series, trained on windows of their histories, scored as the M-competitions.

Training (jaxai.data.series windows, each scaled by its input's mean absolute value): the point
forecast's loss on the scaled window, `task.loss` = 'smape' (the metric itself: sMAPE is scale-free)
or 'mae'; with `model.quantiles` the pinball loss of each quantile output is added. With
`task.deseasonalize` the model sees inputs divided by each window's seasonal factors (from the history
before the cut only) and its forecast is multiplied by the target steps' factors before the loss and eval.
Eval (the 'test' split: one window per series at the end of its history, the official test values
as truth): forecasts are unscaled and `summarize` reports the means over series of sMAPE and MASE
(jaxai.tasks.forecast_metrics), Naive2's on the same series and OWA relative to it; with quantiles,
each level's empirical coverage of the truth. `visualize` draws a few series' history, forecast and truth.
With `model.members` > 1 the model is an ensemble: every member trains on its own loss (each drawing its own
input lengths, its gradient clipped on its own) and eval forecasts the members' mean.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxai import models, optim
from jaxai.errors import ConfigError
from jaxai.images import figure_to_array
from jaxai.tasks import forecast_metrics
from jaxai.tasks.base import Batch, Metrics, Task, TrainState, split_variables

LOSSES = ("smape", "mae", "mase", "smape_mase")
# The MASE loss's scale is floored at this fraction of the window's level: a flat history, or a window cut
# after one value, has a zero seasonal naive error, and its loss would blow up (yearly M3 went NaN).
MASE_SCALE_FLOOR = 0.01
SHOWN_HISTORY_HORIZONS = 4  # The plot shows this many horizons of history before each forecast.
EVAL_OUTPUTS = ("forecast", "quantile_forecast", "truth", "history", "history_length", "mask", "example_index")


def default_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    # Point-forecast loss on the scaled window: 'smape' (percent), 'mae', 'mase' (the error over the
    # history's seasonal naive MAE before the cut) or 'smape_mase' (sMAPE / 100 + MASE: both metrics at once).
    config.loss = "smape"
    # Divide inputs by each window's seasonal factors (jaxai.data.series.seasonal_factors: the M4 test and
    # classical decomposition on the history before the cut) and re-seasonalise the forecast before the loss.
    # M3 monthly, one seed: 13.61 / 0.891 against 14.03 / 0.935 without (a no-op for period 1).
    config.deseasonalize = True
    # Input lengths (the window's latest steps, the rest masked): training draws one per window, eval averages
    # the forecasts over all of them; () = the whole input.
    config.ensemble_input_lengths = ()
    # Give the model summaries of the whole history before the cut beside its window (its trend over one horizon,
    # mean level and length: jaxai.data.series.history_summary), joined to the encoder's last state.
    config.history_summary = False
    config.quantile_weight = 0.01  # Weight of the pinball loss (scaled units) beside the point loss, with model.quantiles.
    config.num_shown = 6  # Series (the first of the split) drawn by `visualize`.
    return config


def build(config: ml_collections.ConfigDict, dataset_info: dict[str, Any], total_steps: int) -> Task:
    """The forecasting task; `dataset_info` supplies `horizon`, `input_length` and the seasonal `period`."""
    check_config(config, dataset_info)
    t = config.task
    horizon, period = int(dataset_info["horizon"]), int(dataset_info["period"])
    model = models.build_model(config.model, horizon=horizon)
    members = int(config.model.members)
    quantiles = jnp.asarray(tuple(config.model.quantiles), jnp.float32)
    clip_norm = float(config.optimizer.grad_clip_norm)
    tx = optim.make_optimizer(member_optimizer_config(config.optimizer) if members > 1 else config.optimizer, total_steps)
    loss_name, quantile_weight = t.loss, float(t.quantile_weight)
    ids = tuple(dataset_info.get("series_ids", ()))
    deseasonalize, ensemble_lengths = bool(t.deseasonalize), tuple(int(k) for k in t.ensemble_input_lengths)
    use_history_summary = bool(t.history_summary)

    def forecast(params: Any, batch: Batch, input_mask: jax.Array) -> jax.Array:
        """Scaled forecasts [M, B, h, Q] of the M members, each on its row of `input_mask` [M, B, L], re-seasonalised."""
        inputs = batch["inputs"] * input_mask
        if deseasonalize:
            inputs = inputs / batch["input_season"]
        outputs = model.apply({"params": params}, inputs, input_mask, *summaries(batch))
        return outputs * batch["target_season"][..., None] if deseasonalize else outputs

    def for_members(x: jax.Array) -> jax.Array:
        return jnp.broadcast_to(x, (members, *x.shape))  # [M, ...]: every member sees the same windows.

    def summaries(batch: Batch) -> tuple[jax.Array, ...]:
        return (for_members(batch["history_summary"]),) if use_history_summary else ()

    def init(rng: jax.Array, batch: Batch) -> TrainState:
        variables = model.init(rng, for_members(batch["inputs"]), for_members(batch["input_mask"]), *summaries(batch))
        params, model_state = split_variables(variables)
        return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params), model_state=model_state)

    def train_step(state: TrainState, batch: Batch, rng: jax.Array) -> tuple[TrainState, Metrics]:
        targets, weights = batch["targets"], batch["target_mask"]  # [B, h] scaled
        input_mask = for_members(batch["input_mask"])  # [M, B, L]
        if ensemble_lengths:  # Each member draws its own input length per window.
            lengths = jax.random.choice(rng, jnp.asarray(ensemble_lengths), (*input_mask.shape[:2], 1))
            input_mask = input_mask * (jnp.arange(input_mask.shape[-1]) >= input_mask.shape[-1] - lengths)

        def loss_fn(params):
            outputs = forecast(params, batch, input_mask)  # [M, B, h, Q]
            point = jax.vmap(lambda o: point_loss(o[..., 0], targets, weights, batch["mase_scale"], loss_name))(outputs)
            pinball = (jax.vmap(lambda o: pinball_loss(o[..., 1:], targets, weights, quantiles))(outputs)
                       if len(quantiles) else jnp.zeros(members))
            # Summed over members, so each member's gradient is that of its own loss.
            return jnp.sum(point + quantile_weight * pinball), (jnp.mean(point), jnp.mean(pinball))

        (loss, (point, pinball)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        if members > 1 and clip_norm > 0:
            grads = clip_each_member(grads, clip_norm)
        metrics = {"loss": loss / members, loss_name: point}
        if len(quantiles):
            metrics["pinball"] = pinball
        return state.apply_gradients(grads, tx), metrics

    def eval_step(state: TrainState, batch: Batch, rng: jax.Array) -> Metrics:
        masks = for_members(batch["input_mask"])
        if ensemble_lengths:
            steps = jnp.arange(masks.shape[-1])
            outputs = jnp.mean(jnp.stack([jnp.mean(forecast(state.params, batch, masks * (steps >= steps.size - k)), axis=0)
                                          for k in ensemble_lengths]), axis=0)  # The members', then the lengths' mean.
        else:
            outputs = jnp.mean(forecast(state.params, batch, masks), axis=0)  # [B, h, Q]: the members' mean.
        outputs = outputs * batch["scale"][:, None, None]  # Back to the series' units.
        return {"forecast": outputs[..., 0], "quantile_forecast": outputs[..., 1:], "truth": batch["truth"],
                "history": batch["history"], "history_length": batch["history_length"], "mask": batch["mask"],
                "example_index": batch["example_index"]}

    def summarize(outputs: dict[str, Any]) -> dict[str, Any]:
        keep = np.asarray(outputs["mask"]).astype(bool)
        histories = real_histories(outputs, keep)
        truth, forecast = np.asarray(outputs["truth"])[keep], np.asarray(outputs["forecast"])[keep]
        ours = forecast_metrics.accuracy(histories, truth, forecast, period)
        naive2 = forecast_metrics.accuracy(
            histories, truth, forecast_metrics.baseline_forecasts("naive2", histories, horizon, period), period)
        metrics = {**ours, "owa": forecast_metrics.owa(ours["smape"], ours["mase"], naive2["smape"], naive2["mase"]),
                   "naive2_smape": naive2["smape"], "naive2_mase": naive2["mase"], "num_series": int(keep.sum())}
        quantile_forecast = np.asarray(outputs["quantile_forecast"])[keep]  # [N, h, q]
        for index, level in enumerate(np.asarray(quantiles)):
            metrics[f"coverage_{level:g}"] = float(np.mean(truth <= quantile_forecast[..., index]))
        return metrics

    def visualize(state: TrainState, outputs: dict[str, Any], rng: jax.Array) -> dict[str, np.ndarray]:
        """History, forecast (and quantile band) and truth of the split's first `task.num_shown` series."""
        keep = np.asarray(outputs["mask"]).astype(bool)
        shown = np.flatnonzero(keep)[: int(t.num_shown)]
        histories = real_histories(outputs, np.isin(np.arange(len(keep)), shown))
        names = [ids[i] if i < len(ids) else f"series {i}" for i in np.asarray(outputs["example_index"])[shown]]
        return {"forecasts": forecast_figure(
            names, histories, np.asarray(outputs["truth"])[shown], np.asarray(outputs["forecast"])[shown],
            np.asarray(outputs["quantile_forecast"])[shown], np.asarray(quantiles), horizon)}

    reductions = {name: "concat" for name in EVAL_OUTPUTS}
    return Task(init=init, train_step=train_step, eval_step=eval_step, summarize=summarize, reductions=reductions,
                units_per_step={"windows": config.data.batch_size}, visualize=visualize)


def check_config(config: ml_collections.ConfigDict, dataset_info: dict[str, Any]) -> None:
    """One-line ConfigErrors for settings the forecasting task cannot run."""
    t, m = config.task, config.model
    if m.name != "lstm_forecaster":
        raise ConfigError(f"task.name='forecasting' trains a forecaster; set model.name='lstm_forecaster' (got {m.name!r}).")
    if "horizon" not in dataset_info:
        raise ConfigError(f"task.name='forecasting' needs a series dataset ('m3' or 'csv_series'); got data.name={config.data.name!r}.")
    if t.loss not in LOSSES:
        raise ConfigError(f"task.loss={t.loss!r}; choose one of {LOSSES}.")
    if not all(0 < k <= int(dataset_info["input_length"]) for k in t.ensemble_input_lengths):
        raise ConfigError(f"task.ensemble_input_lengths={tuple(t.ensemble_input_lengths)} must lie in 1..data.input_length="
                          f"{dataset_info['input_length']}.")
    if int(m.members) < 1:
        raise ConfigError(f"model.members={m.members} must be >= 1 (the networks in the ensemble; 1 = a single network).")
    if not all(0 < q < 1 for q in m.quantiles):
        raise ConfigError(f"model.quantiles={tuple(m.quantiles)} must be levels strictly between 0 and 1, e.g. (0.1, 0.9).")
    if config.train.early_stopping_metric in ("smape", "mase", "owa") and config.train.early_stopping_mode != "min":
        raise ConfigError(f"train.early_stopping_metric={config.train.early_stopping_metric!r} is lower-is-better; "
                          "set train.early_stopping_mode='min'.")


def member_optimizer_config(optimizer: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """The optimizer section without global-norm clipping: an ensemble clips each member's gradient on its own."""
    optimizer = optimizer.copy_and_resolve_references()
    with optimizer.unlocked():
        optimizer.grad_clip_norm = 0.0
    return optimizer


def clip_each_member(grads: Any, max_norm: float) -> Any:
    """Each member's gradient (leading axis of every leaf) clipped to `max_norm`, as optax.clip_by_global_norm alone."""
    leaves = jax.tree.leaves(grads)
    norms = jnp.sqrt(sum(jnp.sum(jnp.square(leaf).reshape(leaf.shape[0], -1), axis=1) for leaf in leaves))  # [M]
    factors = jnp.where(norms < max_norm, 1.0, max_norm / jnp.maximum(norms, 1e-30))
    return jax.tree.map(lambda leaf: leaf * factors.reshape((-1,) + (1,) * (leaf.ndim - 1)).astype(leaf.dtype), grads)


def point_loss(forecast: jax.Array, targets: jax.Array, weights: jax.Array, mase_scale: jax.Array, name: str) -> jax.Array:
    """Mean over observed target steps of the loss `name` (see default_config), [B, h] and [B] -> scalar."""
    error = jnp.abs(targets - forecast)
    smape = 200.0 * error / jnp.maximum(jnp.abs(targets) + jnp.abs(forecast), 1e-6)
    mase = error / jnp.maximum(mase_scale, MASE_SCALE_FLOOR)[:, None]
    per_step = {"smape": smape, "mae": error, "mase": mase, "smape_mase": smape / 100.0 + mase}[name]
    return jnp.sum(per_step * weights) / jnp.maximum(jnp.sum(weights), 1.0)


def pinball_loss(forecasts: jax.Array, targets: jax.Array, weights: jax.Array, levels: jax.Array) -> jax.Array:
    """Mean pinball (quantile) loss, forecasts [B, h, q] at `levels` [q] against targets [B, h]."""
    error = targets[..., None] - forecasts  # [B, h, q]
    per_step = jnp.maximum(levels * error, (levels - 1.0) * error)
    return jnp.sum(jnp.mean(per_step, axis=-1) * weights) / jnp.maximum(jnp.sum(weights), 1.0)


def real_histories(outputs: dict[str, Any], keep: np.ndarray) -> list[np.ndarray]:
    """The kept rows' histories without their left padding."""
    history, lengths = np.asarray(outputs["history"])[keep], np.asarray(outputs["history_length"])[keep]
    return [row[len(row) - n:].astype(np.float64) for row, n in zip(history, lengths)]


def forecast_figure(names: list[str], histories: list[np.ndarray], truth: np.ndarray, forecast: np.ndarray,
                    quantile_forecast: np.ndarray, levels: np.ndarray, horizon: int) -> np.ndarray:
    """A grid of panels, one a series: recent history, truth and forecast (a band between the outer quantiles)."""
    from matplotlib.figure import Figure

    columns = min(3, max(1, len(names)))
    rows = -(-len(names) // columns)
    figure = Figure(figsize=(4.5 * columns, 2.8 * rows), dpi=80)
    for panel, (name, history) in enumerate(zip(names, histories)):
        axes = figure.add_subplot(rows, columns, panel + 1)
        shown = history[-SHOWN_HISTORY_HORIZONS * horizon:]
        past = np.arange(len(history) - len(shown), len(history))
        future = np.arange(len(history), len(history) + horizon)
        axes.plot(past, shown, color="black", linewidth=1, label="history")
        axes.plot(future, truth[panel], color="black", linestyle="--", linewidth=1, label="truth")
        axes.plot(future, forecast[panel], color="tab:blue", linewidth=1.5, label="forecast")
        if len(levels) >= 2:
            low, high = int(np.argmin(levels)), int(np.argmax(levels))
            axes.fill_between(future, quantile_forecast[panel, :, low], quantile_forecast[panel, :, high], color="tab:blue",
                              alpha=0.2, label=f"{levels[low]:g}-{levels[high]:g} quantiles")
        axes.set_title(name, fontsize=9)
        axes.tick_params(labelsize=7)
        if panel == 0:
            axes.legend(fontsize=7)
    figure.tight_layout()
    return figure_to_array(figure)
