"""Forecasting: windows and scaling see no test values, the M-competition metrics and baselines by hand,
one-line errors for bad series or frequencies, and a tiny end-to-end run on a CSV the test writes."""

import math
import os

import numpy as np
import pytest

from jaxai.config import load_config
from jaxai.data import build_dataset
from jaxai.data import series as series_lib
from jaxai.errors import ConfigError, DatasetError
from jaxai.tasks import forecast_metrics as fm
from jaxai.train.loop import train
from run_helpers import read_metrics

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMOKE = os.path.join(ROOT, "experiments/m3_monthly_lstm_attention.py:smoke")


def seasonal_series(count: int, length: int, period: int = 4, seed: int = 0) -> list[np.ndarray]:
    """Positive series: level * (trend + multiplicative season) + noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    return [rng.uniform(50, 500) * (1 + 0.01 * t) * (1 + 0.3 * np.sin(2 * np.pi * (t + rng.integers(period)) / period))
            * rng.normal(1, 0.02, length) for _ in range(count)]


def write_csv(path, full: list[np.ndarray]) -> None:
    with open(path, "w") as file:
        file.write("id,value,note\n")
        for index, values in enumerate(full):
            file.writelines(f"s{index},{value:.4f},x\n" for value in values)


def test_windows_never_let_test_values_into_inputs_or_scaling():
    histories = seasonal_series(5, 30)
    tests = np.ones((5, 6), np.float32)
    leaked = np.full((5, 6), 1e6, np.float32)
    make = lambda truth: series_lib.final_windows(series_lib.SeriesSet([str(i) for i in range(5)], histories, truth, 4), 12)
    clean, dirty = make(tests), make(leaked)
    for key in ("inputs", "input_mask", "scale", "mase_scale", "input_season", "target_season", "history_summary", "history"):
        np.testing.assert_array_equal(clean[key], dirty[key], err_msg=key)
    np.testing.assert_allclose(clean["inputs"][0] * clean["scale"][0], histories[0][-12:], rtol=1e-5)
    # Training windows: nothing at or after the cut reaches the inputs, the scale or MASE's scale.
    aligned, lengths = series_lib.right_aligned(histories), np.array([len(x) for x in histories])
    series, cuts = np.array([0, 1, 2, 3]), np.array([3, 10, 24, 30])
    before = series_lib.windows(aligned, lengths, series, cuts, 12, 6, 4)
    changed = aligned.copy()
    for row, cut in zip(series, cuts):
        changed[row, aligned.shape[1] - lengths[row] + cut:] = 1e6
    after = series_lib.windows(changed, lengths, series, cuts, 12, 6, 4)
    for key in ("inputs", "input_mask", "scale", "mase_scale", "input_season", "target_season", "history_summary"):
        np.testing.assert_array_equal(before[key], after[key], err_msg=key)
    assert before["input_mask"][0].sum() == 3 and before["target_mask"][3].sum() == 0  # Short start; end of history.
    np.testing.assert_allclose(before["mase_scale"] * before["scale"],
                               [fm.mase_scale(histories[s][:c], 4) for s, c in zip(series, cuts)], rtol=1e-5)
    yearly = series_lib.windows(aligned, lengths, series, cuts, 12, 6, 1)  # Period 1: lag-1 differences throughout.
    np.testing.assert_allclose(yearly["mase_scale"] * yearly["scale"],
                               [fm.mase_scale(histories[s][:c], 1) for s, c in zip(series, cuts)], rtol=1e-5)
    # Sampled training cuts keep a whole target inside the history.
    series, cuts = series_lib.training_cuts(lengths, 6, np.random.default_rng(0), 1000, 1.5)
    assert np.all(cuts >= 1) and np.all(cuts + 6 <= lengths[series])


def test_seasonal_factors_are_naive2s_indices_of_the_history_before_each_cut():
    histories = seasonal_series(6, 40) + [np.linspace(10.0, 50.0, 40), np.full(40, 7.0)]  # + a trend and a flat series.
    aligned, lengths = series_lib.right_aligned(histories), np.array([len(x) for x in histories])
    series, cuts = np.arange(8), np.array([8, 12, 20, 27, 33, 40, 30, 30])  # Cuts below 3 periods are never seasonal.
    windows = series_lib.windows(aligned, lengths, series, cuts, 12, 6, 4)
    factors = np.concatenate([windows["input_season"], windows["target_season"]], axis=1)  # [B, 18]
    for row, (s, cut) in enumerate(zip(series, cuts)):
        position = cut + np.arange(-12, 6)
        expected = np.ones(18)
        with np.errstate(invalid="ignore"):  # The flat series' autocorrelation is 0 / 0: not seasonal.
            seasonal = fm.is_seasonal(histories[s][:cut], 4)
        if seasonal:
            expected = np.where(position >= 0, fm.seasonal_indices(histories[s][:cut], 4)[position % 4], 1.0)
        np.testing.assert_allclose(factors[row], expected, rtol=1e-5, err_msg=f"series {s}, cut {cut}")
    assert np.all(factors[:2] == 1) and np.any(factors[2:6] != 1) and np.all(factors[6:] == 1)
    assert np.all(series_lib.windows(aligned, lengths, series, cuts, 12, 6, 1)["input_season"] == 1)  # Period 1.


def test_smape_and_mase_equal_hand_computed_values():
    history = np.array([1.0, 3.0, 2.0, 4.0, 3.0])
    truth, forecast = np.array([4.0, 5.0]), np.array([2.0, 5.0])
    # sMAPE = 200/2 * (|4-2|/(4+2) + 0) = 100/3; MASE scale (m=1) = (2+1+2+1)/4 = 1.5, MAE = 1 -> 2/3.
    assert fm.smape(truth, forecast) == pytest.approx(100 / 3)
    assert fm.mase(history, truth, forecast, period=1) == pytest.approx(1 / 1.5)
    # m=2: |2-1| + |4-3| + |3-2| over 3 = 1.
    assert fm.mase(history, truth, forecast, period=2) == pytest.approx(1.0)
    assert fm.owa(10.0, 0.5, 20.0, 1.0) == pytest.approx(0.5)
    assert fm.smape(np.zeros(3), np.zeros(3)) == 0.0


def test_seasonal_naive_and_naive2_follow_their_definitions():
    history = np.arange(1.0, 11.0)  # 1..10, period 4: the last season is 7, 8, 9, 10.
    np.testing.assert_array_equal(fm.seasonal_naive(history, 6, 4), [7, 8, 9, 10, 7, 8])
    np.testing.assert_array_equal(fm.seasonal_naive(history, 3, 1), [10, 10, 10])
    np.testing.assert_array_equal(fm.naive(history, 2), [10, 10])
    # A purely multiplicative seasonal series: Naive2 finds the seasonality and carries it on.
    season = np.array([0.8, 1.2, 0.9, 1.1])
    seasonal = 100 * np.tile(season, 8)
    assert fm.is_seasonal(seasonal, 4)
    np.testing.assert_allclose(fm.seasonal_indices(seasonal, 4), season, rtol=1e-6)
    np.testing.assert_allclose(fm.naive2(seasonal, 6, 4), 100 * np.resize(season, 6), rtol=1e-6)
    # A trend without seasonality: Naive2 is the naive forecast.
    assert not fm.is_seasonal(history, 4)
    np.testing.assert_array_equal(fm.naive2(history, 3, 4), [10, 10, 10])


def test_a_horizon_longer_than_a_history_is_refused_with_the_series_id(tmp_path):
    path = tmp_path / "short.csv"
    write_csv(path, [np.arange(1.0, 30.0), np.arange(1.0, 9.0)])
    with pytest.raises(DatasetError, match=r"Series 's1' has 8 values, too few for a test split of data.horizon=8"):
        series_lib.read_csv_series(str(path), "quarterly")
    with pytest.raises(DatasetError, match=r"Series 's1' has a history of 3 values, too short for data.horizon=5"):
        series_lib.read_csv_series(str(path), "quarterly", horizon=5)


def test_an_unknown_m3_frequency_lists_the_valid_ones():
    with pytest.raises(DatasetError, match=r"data.frequency='weekly'; choose one of \['yearly', 'quarterly', 'monthly', 'other'\]"):
        series_lib.load_m3("weekly")
    config = load_config(SMOKE, ["data.frequency=hourlyy"])
    with pytest.raises(DatasetError, match="Unknown frequency data.frequency='hourlyy'"):
        build_dataset(config.data, seed=0)


def test_tiny_csv_run_lowers_the_loss_and_reports_finite_metrics(tmp_path):
    path = tmp_path / "series.csv"
    write_csv(path, seasonal_series(24, 40, seed=1))
    overrides = ["train.progress_bar=False", "data.name=csv_series", f"data.path={path}", "data.frequency=quarterly",
                 "data.input_length=16", "data.batch_size=16", "data.eval_batch_size=24", "train.num_steps=60",
                 "train.log_every=10", "train.eval_every=60", "train.checkpoint_every=60", "optimizer.learning_rate=3e-3",
                 # Cuts near the start of 32-value histories see mostly padding: too noisy a loss for 60 steps to compare.
                 "data.window_horizons=1.5"]
    metrics = train(load_config(SMOKE, [*overrides, "task.deseasonalize=False"]), str(tmp_path / "run"))
    losses = [record["loss"] for record in read_metrics(str(tmp_path / "run"), "train")]
    assert losses[-1] < 0.7 * losses[0], losses
    assert metrics["num_series"] == 24
    for key in ("smape", "mase", "owa", "naive2_smape", "naive2_mase", "coverage_0.1", "coverage_0.9"):
        assert math.isfinite(metrics[key]), (key, metrics)
    assert os.path.exists(tmp_path / "run" / "images" / "eval_forecasts_00000060.png")
    # Deseasonalised (and trained and averaged over two input lengths), the seasonal series are far easier.
    seasonal = train(load_config(SMOKE, [*overrides, "task.deseasonalize=True", "task.ensemble_input_lengths=(16, 12)"]),
                     str(tmp_path / "seasonal"))
    assert seasonal["smape"] < metrics["smape"] and seasonal["mase"] < metrics["mase"], (seasonal, metrics)


def test_the_validation_split_holds_out_each_historys_last_horizon_from_training(tmp_path):
    path = tmp_path / "series.csv"
    full = seasonal_series(6, 40, seed=2)
    write_csv(path, full)
    overrides = ["data.name=csv_series", f"data.path={path}", "data.frequency=quarterly", "data.input_length=12",
                 "data.batch_size=8", "data.eval_split=validation", "data.window_horizons=100"]
    dataset = build_dataset(load_config(SMOKE, overrides).data, seed=0)
    (batch,) = list(dataset.eval_batches("validation"))
    rows = np.flatnonzero(batch["mask"])
    # History = each series without its test (last 8) and validation (8 before them) values; truth = the latter.
    np.testing.assert_allclose(batch["truth"][rows], np.stack([x[-16:-8] for x in full]), rtol=1e-5)
    assert np.all(batch["history_length"][rows] == 24)
    # Training targets never reach the held-out values: every target step lies within the first 24 values.
    held_out = np.concatenate([x[-16:] for x in full]).astype(np.float32)
    iterator = iter(dataset.train)
    for _ in range(20):
        window = next(iterator)
        values = np.concatenate([(window["inputs"] * window["scale"][:, None])[window["input_mask"] > 0],
                                 (window["targets"] * window["scale"][:, None])[window["target_mask"] > 0]])
        assert not np.any(np.isclose(values[:, None], held_out[None, :], rtol=1e-6)), "a held-out value reached training"
    with pytest.raises(DatasetError, match="holds out its 'validation' split, not 'test'"):
        list(dataset.eval_batches("test"))
    with pytest.raises(DatasetError, match="data.eval_split='train'"):
        build_dataset(load_config(SMOKE, [*overrides, "data.eval_split=train"]).data, seed=0)
    with pytest.raises(DatasetError, match="data.window_horizons=0.0 must be > 0"):
        build_dataset(load_config(SMOKE, [*overrides, "data.window_horizons=0"]).data, seed=0)


def test_history_summary_is_the_whole_historys_trend_level_and_length_before_the_cut():
    line = 5.0 + 2.0 * np.arange(60)  # Slope 2 per step.
    aligned, lengths = series_lib.right_aligned([line, np.full(20, 3.0)]), np.array([60, 20])
    windows = series_lib.windows(aligned, lengths, np.array([0, 0, 1]), np.array([40, 60, 20]), 12, 6, 1)
    for row, cut in enumerate([40, 60]):
        scale = np.mean(line[cut - 12:cut])  # The window's scale: its input's mean.
        expected = [2.0 * 6 / scale, np.log(np.mean(line[:cut]) / scale), np.log(cut / 6)]
        np.testing.assert_allclose(windows["history_summary"][row], expected, rtol=1e-5)
    np.testing.assert_allclose(windows["history_summary"][2], [0.0, 0.0, np.log(20 / 6)], atol=1e-6)  # Flat: no trend.


def test_ensemble_members_are_independent_networks_in_one_program():
    import jax
    import jax.numpy as jnp

    from jaxai.models.forecaster import ForecasterNet, LSTMForecaster

    inputs = jnp.asarray(np.random.default_rng(0).uniform(0.5, 1.5, (3, 3, 12)), jnp.float32)  # [members, B, L]
    mask = jnp.ones((3, 3, 12), jnp.float32)
    fields = dict(horizon=4, hidden_size=8, embed_dim=4, mlp_dim=8, num_heads=2)
    ensemble = LSTMForecaster(**fields, members=3)
    params = ensemble.init(jax.random.key(0), inputs, mask)
    outputs = ensemble.apply(params, inputs, mask)
    assert outputs.shape == (3, 3, 4, 1) and np.all(np.isfinite(outputs))
    same_input = ensemble.apply(params, jnp.broadcast_to(inputs[0], inputs.shape), mask)
    assert not np.allclose(same_input[0], same_input[1])  # Each member has its own initialisation.
    single = ForecasterNet(**fields)
    count = lambda tree: sum(leaf.size for leaf in jax.tree.leaves(tree))
    assert count(params) == 3 * count(single.init(jax.random.key(0), inputs[0], mask[0]))
    member_1 = jax.tree.map(lambda leaf: leaf[1], params["params"]["members"])
    np.testing.assert_allclose(single.apply({"params": member_1}, inputs[1], mask[1]), outputs[1], rtol=1e-5, atol=1e-6)
    # One member is the plain network: the same parameters, initialisation and forecasts as ForecasterNet.
    alone = LSTMForecaster(**fields)
    np.testing.assert_array_equal(alone.apply(single.init(jax.random.key(0), inputs[0], mask[0]), inputs[:1], mask[:1])[0],
                                  single.apply(single.init(jax.random.key(0), inputs[0], mask[0]), inputs[0], mask[0]))


def test_each_ensemble_member_trains_as_it_would_alone(tmp_path):
    import jax
    import optax

    from jaxai.tasks import forecasting

    path = tmp_path / "series.csv"
    write_csv(path, seasonal_series(16, 40, seed=3))
    # A clip norm this small clips every step: a global norm would let one member's gradient shrink the other's.
    config = load_config(SMOKE, ["data.name=csv_series", f"data.path={path}", "data.frequency=quarterly",
                                 "data.input_length=12", "data.batch_size=8", "model.members=2",
                                 "task.ensemble_input_lengths=(12, 8)", "optimizer.grad_clip_norm=1e-3"])
    dataset = build_dataset(config.data, seed=0)
    task = forecasting.build(config, dataset.info, total_steps=10)
    batch = next(iter(dataset.train))
    state = task.init(jax.random.key(0), batch)
    shifted = state.replace(params=jax.tree.map(lambda leaf: leaf.at[1].multiply(1.5), state.params))
    step = jax.jit(task.train_step)
    updated, _ = step(state, batch, jax.random.key(1))
    updated_shifted, _ = step(shifted, batch, jax.random.key(1))
    first = lambda tree: jax.tree.map(lambda leaf: leaf[0], tree)
    for a, b in zip(jax.tree.leaves(first(updated.params)), jax.tree.leaves(first(updated_shifted.params))):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)  # Member 0 moved the same, whatever member 1 holds.
    second = lambda tree: jax.tree.map(lambda leaf: leaf[1], tree)
    assert not all(np.allclose(a, b) for a, b in zip(jax.tree.leaves(second(updated.params)),
                                                      jax.tree.leaves(second(updated_shifted.params))))
    # Per-member clipping is optax's global-norm clipping applied to each member on its own.
    grads = {"a": np.random.default_rng(1).normal(size=(2, 3, 4)).astype(np.float32), "b": np.array([[0.1], [0.001]], np.float32)}
    clipped = forecasting.clip_each_member(grads, 1.0)
    clip = optax.clip_by_global_norm(1.0)
    for member in range(2):
        alone, _ = clip.update(jax.tree.map(lambda leaf: leaf[member], grads), clip.init(None))
        for key in grads:
            np.testing.assert_allclose(clipped[key][member], alone[key], rtol=1e-6)
    with pytest.raises(ConfigError, match="model.members=0 must be >= 1"):
        forecasting.build(load_config(SMOKE, ["model.members=0"]), dataset.info, total_steps=10)
