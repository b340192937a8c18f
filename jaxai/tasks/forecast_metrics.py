"""Point-forecast accuracy as the M-competitions define it, and the classical baselines, in NumPy.

Per series, with history x_1..x_n, truth y_1..y_h, forecast f_1..f_h and seasonal period m:
  sMAPE = 200/h * sum |y - f| / (|y| + |f|)                      (percent; M3/M4)
  MASE  = mean |y - f| / (1/(n-m) * sum_{t>m} |x_t - x_{t-m}|)   (the in-sample seasonal naive MAE; M4)
  OWA   = (sMAPE / sMAPE_Naive2 + MASE / MASE_Naive2) / 2        (on the means over all series; M4)
Baselines: naive (last value), seasonal naive (the last season repeated), Naive2 (naive on the
seasonally adjusted series, the seasonality put back; adjusted only when the M4 90% autocorrelation
test finds seasonality) and the Theta method (statsmodels' ThetaModel, the M3 competition's best).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

SEASONALITY_CRITICAL_VALUE = 1.645  # M4: seasonal when |acf_m| exceeds this times its std error (90%, two-sided).


def smape(truth: np.ndarray, forecast: np.ndarray) -> np.ndarray:
    """sMAPE in percent over the last axis: [..., h] -> [...]; 0 where truth and forecast are both 0."""
    truth, forecast = np.asarray(truth, np.float64), np.asarray(forecast, np.float64)
    denominator = np.abs(truth) + np.abs(forecast)
    ratio = np.divide(np.abs(truth - forecast), denominator, out=np.zeros_like(denominator), where=denominator > 0)
    return 200.0 * np.mean(ratio, axis=-1)


def mase_scale(history: np.ndarray, period: int) -> float:
    """The in-sample MAE of the seasonal naive forecast (lag `period`, lag 1 when the history is too short)."""
    history = np.asarray(history, np.float64)
    lag = period if len(history) > period else 1
    return float(np.mean(np.abs(history[lag:] - history[:-lag])))


def mase(history: np.ndarray, truth: np.ndarray, forecast: np.ndarray, period: int) -> float:
    """MASE of one series' forecast; its scale comes from the history alone."""
    error = np.mean(np.abs(np.asarray(truth, np.float64) - np.asarray(forecast, np.float64)))
    return float(error / mase_scale(history, period))


def owa(smape_value: float, mase_value: float, smape_naive2: float, mase_naive2: float) -> float:
    """Overall weighted average relative to Naive2 (M4): 1 is Naive2's accuracy, lower is better."""
    return 0.5 * (smape_value / smape_naive2 + mase_value / mase_naive2)


def accuracy(histories: Sequence[np.ndarray], truths: np.ndarray, forecasts: np.ndarray, period: int) -> dict[str, float]:
    """Mean sMAPE and MASE over series: histories (ragged), truths and forecasts [N, h]."""
    return {
        "smape": float(np.mean(smape(truths, forecasts))),
        "mase": float(np.mean([mase(x, y, f, period) for x, y, f in zip(histories, truths, forecasts)])),
    }


def naive(history: np.ndarray, horizon: int) -> np.ndarray:
    """The last observed value, repeated."""
    return np.full(horizon, float(history[-1]))


def seasonal_naive(history: np.ndarray, horizon: int, period: int) -> np.ndarray:
    """The last `period` values repeated: f_i = x_{n - m + ((i - 1) mod m) + 1}; naive when m = 1 or n < m."""
    history = np.asarray(history, np.float64)
    if period <= 1 or len(history) < period:
        return naive(history, horizon)
    return np.resize(history[-period:], horizon)


def autocorrelation(x: np.ndarray, lag: int) -> float:
    """Sample autocorrelation at `lag` (the series' mean removed, normalised by its total variation)."""
    centred = np.asarray(x, np.float64) - np.mean(x)
    return float(np.sum(centred[lag:] * centred[:-lag]) / np.sum(centred * centred))


def is_seasonal(history: np.ndarray, period: int) -> bool:
    """The M4 test: |acf_m| > 1.645 * sqrt((1 + 2 * sum_{k<m} acf_k^2) / n) (a 90% test of no seasonality)."""
    if period <= 1 or len(history) < 3 * period:
        return False
    acf = [autocorrelation(history, k) for k in range(1, period + 1)]
    limit = SEASONALITY_CRITICAL_VALUE * np.sqrt((1 + 2 * np.sum(np.square(acf[:-1]))) / len(history))
    return abs(acf[-1]) > limit


def seasonal_indices(history: np.ndarray, period: int) -> np.ndarray:
    """Classical multiplicative decomposition's seasonal indices [m], index 0 for the history's first value.

    The trend is the centred moving average (2 x m for even m); each season's index is the mean of
    x / trend at its positions, the m indices normalised to average 1.
    """
    x = np.asarray(history, np.float64)
    if period % 2 == 0:
        weights = np.r_[0.5, np.ones(period - 1), 0.5] / period
    else:
        weights = np.ones(period) / period
    trend = np.convolve(x, weights, mode="valid")  # Centred: trend[i] sits at x[i + len(weights) // 2].
    offset = len(weights) // 2
    ratios = x[offset:offset + len(trend)] / trend
    positions = (np.arange(len(trend)) + offset) % period
    indices = np.array([np.mean(ratios[positions == s]) for s in range(period)])
    return indices / np.mean(indices)


def naive2(history: np.ndarray, horizon: int, period: int) -> np.ndarray:
    """Naive on the seasonally adjusted history, reseasonalised; plain naive when the test finds no seasonality."""
    history = np.asarray(history, np.float64)
    if not is_seasonal(history, period):
        return naive(history, horizon)
    indices = seasonal_indices(history, period)
    n = len(history)
    level = history[-1] / indices[(n - 1) % period]
    return level * indices[(n + np.arange(horizon)) % period]


def theta(history: np.ndarray, horizon: int, period: int) -> np.ndarray:
    """The Theta method (Assimakopoulos & Nikolopoulos 2000) as statsmodels fits it, deseasonalised when its test says."""
    import warnings

    from statsmodels.tsa.forecasting.theta import ThetaModel

    history = np.asarray(history, np.float64)
    with warnings.catch_warnings():  # Short or flat series make the SES fit warn; its forecast is still defined.
        warnings.simplefilter("ignore")
        model = ThetaModel(history, period=max(period, 1), deseasonalize=period > 1 and len(history) >= 2 * period)
        return np.asarray(model.fit().forecast(horizon), np.float64)


BASELINES = ("naive", "seasonal_naive", "naive2", "theta")


def baseline_forecasts(name: str, histories: Sequence[np.ndarray], horizon: int, period: int) -> np.ndarray:
    """One baseline's forecasts [N, h] for every history."""
    methods = {
        "naive": lambda x: naive(x, horizon),
        "seasonal_naive": lambda x: seasonal_naive(x, horizon, period),
        "naive2": lambda x: naive2(x, horizon, period),
        "theta": lambda x: theta(x, horizon, period),
    }
    if name not in methods:
        raise ValueError(f"Unknown baseline {name!r}; choose one of {BASELINES}.")
    return np.stack([methods[name](np.asarray(x)) for x in histories])
