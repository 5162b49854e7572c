"""Backtests: fit the history up to a cutoff, forecast what came after, compare.

:func:`forecast_entries` simulates customers forward from a journey fit, one future per
posterior draw:

* **known** customers (seen up to the end of the fit's data) start where they were
  last seen, if still there (a draw of the nowcast's P(still active),
  :mod:`funnelsim.inference.nowcast`), and move by the fit's rates; in a repeat stage
  fitted customer by customer each keeps their own repeat and drop-out rates, drawn
  from their posterior (``λ ~ Gamma(r + x, α + T)``, ``μ ~ Gamma(s, β + T)``);
* **new** customers arrive as a Poisson stream at the fit's arrival rate, into the
  stages where customers first appeared in the data (in that mix); in the repeat stage
  each gets rates drawn from the population (``Gamma(r, α)``, ``Gamma(s, β)``, or the
  rates of a class drawn by the classes' weights).

Every move into a stage is an entry (repeats included; drop-out into ``lost`` is not
seen, so not counted). The fit's base rates are used: campaign lifts are left out.

:func:`backtest_journeys` runs the whole check on an event log: fit up to the cutoff,
forecast to the end of the data, and tabulate forecast against what happened per stage,
cohort (``known``, ``new``, ``all``) and period.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from funnelsim.errors import Problem, ScenarioError
from funnelsim.funnel import LOST
from funnelsim.inference.fitted import FittedFunnel
from funnelsim.inference.nowcast import _active_probability

__all__ = ["Backtest", "backtest_journeys", "forecast_entries", "COHORTS"]

COHORTS = ("known", "new", "all")
_DAY = pd.Timedelta(days=1)
#: a backtest needs at least this many days of data on either side of the cutoff
MIN_DAYS = 7.0


def forecast_entries(
    fit: FittedFunnel,
    horizon: float,
    *,
    period_days: float = 7.0,
    draws: int = 200,
    seed: int | None = None,
    heterogeneity: str | None = None,
) -> dict[str, np.ndarray]:
    """Entries per draw, period and stage ``(draws, periods, stages)`` over ``horizon``
    days after the fit's data, for the ``known`` and ``new`` cohorts.

    ``heterogeneity`` picks the repeat stage's model (``"gamma"``, ``"classes:K"`` or ``"none"``;
    default: the one fitted; ignored without a customer-by-customer fit).
    """
    last = fit.last_events()
    if last is None:
        raise ValueError("the fit keeps no customers: a journey fit is needed")
    rng = np.random.default_rng(seed)
    all_rates = fit.rate_draws()
    pick = np.linspace(0, len(all_rates) - 1, min(draws, len(all_rates))).round().astype(int)
    rates = all_rates[pick]  # (D, G, S, S)
    d_n, _, s_n, _ = rates.shape
    silent = fit.idata.attrs.get("drop_off", "silent") != "observed"
    stages = list(fit.stages)
    n_periods = int(np.ceil(horizon / period_days - 1e-9))
    end = pd.Timestamp(fit.data["end"])

    # the repeat stage, customer by customer
    info = fit.repeat_info
    rep = stages.index(info["stage"]) if info else -1
    model = fit.repeat_model(heterogeneity, max_draws=d_n) if info else None
    h = fit.repeat_histories() if info else None
    exits = np.zeros((d_n, s_n))
    if model is not None and h is not None:
        m_pick = np.arange(d_n) % model.n_draws
        for j, target in enumerate(h.targets):
            exits[:, stages.index(target)] = model.nu_j[m_pick, j]

    # known customers: one lane per draw and customer, if still there
    seg_of = {s: i for i, s in enumerate(fit.segments)}
    seg = last["segment"].map(seg_of).fillna(0).to_numpy(dtype=np.int64)
    stage = last["stage"].map({s: i for i, s in enumerate(stages)}).to_numpy(dtype=np.int64)
    tau = ((end - last["last_event"]) / _DAY).to_numpy(dtype=float).clip(min=0.0)
    p = _active_probability(rates, silent, seg, stage, tau)
    p[:, stage == s_n - 1] = 0.0
    n = len(last)
    lam = np.full((d_n, n), np.nan)
    mu = np.full((d_n, n), np.nan)
    if model is not None and h is not None:
        where = pd.Index(np.asarray(h.customer_id).astype(str)).get_indexer(
            last["customer_id"].astype(str)
        )
        mine = (where >= 0) & (stage == rep)
        sub = where[mine]
        p[:, mine] = model.p_alive(h)[m_pick][:, sub]
        own_lam, own_mu = model.draw_rates(h, rng, m_pick)
        lam[:, mine], mu[:, mine] = own_lam[:, sub], own_mu[:, sub]
    there = rng.random((d_n, n)) < p
    dd, cc = np.nonzero(there)
    known = _Lanes(dd, seg[cc], stage[cc], np.zeros(len(dd)), lam[dd, cc], mu[dd, cc])

    # new customers
    arr = fit.idata.posterior["arrivals"].values
    per_day = arr.reshape(-1, *arr.shape[2:])[pick].sum(axis=2)  # (D, G)
    first = fit.data.get("first_stage") or {fit.entry: 1}
    entry_idx = np.array([stages.index(s) for s in first])
    entry_p = np.array(list(first.values()), dtype=float)
    entry_p /= entry_p.sum()
    counts = rng.poisson(per_day * horizon)  # (D, G)
    nd = np.repeat(np.repeat(np.arange(d_n), len(fit.segments)), counts.ravel())
    ng = np.repeat(np.tile(np.arange(len(fit.segments)), d_n), counts.ravel())
    start = rng.uniform(0.0, horizon, len(nd))
    nz = entry_idx[rng.choice(len(entry_idx), size=len(nd), p=entry_p)]
    new = _Lanes(nd, ng, nz, start, np.full(len(nd), np.nan), np.full(len(nd), np.nan))
    out_new = np.zeros((d_n, n_periods, s_n))
    np.add.at(out_new, (nd, np.minimum((start // period_days).astype(int), n_periods - 1), nz), 1)

    out = {}
    for name, lanes, base in (("known", known, None), ("new", new, out_new)):
        if model is not None:
            missing = np.isnan(lanes.lam)
            lanes.lam[missing], lanes.mu[missing] = model.draw_population(
                m_pick[lanes.d[missing]], rng
            )
        entries = _walk(lanes, rates, rep, exits, silent, horizon, period_days, n_periods, rng)
        out[name] = entries if base is None else entries + base
    return out


@dataclass
class _Lanes:
    d: np.ndarray  # posterior draw
    g: np.ndarray  # segment
    z: np.ndarray  # stage
    t: np.ndarray  # days since the end of the data
    lam: np.ndarray  # own repeat rate in the repeat stage (NaN: the fit's rate)
    mu: np.ndarray  # own silent drop-out rate there


def _walk(
    lanes: _Lanes,
    rates: np.ndarray,
    rep: int,
    exits: np.ndarray,
    silent: bool,
    horizon: float,
    period_days: float,
    n_periods: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Move every lane until it leaves the horizon or is lost; count its entries."""
    d_n, _, s_n, _ = rates.shape
    out = np.zeros((d_n, n_periods, s_n))
    d, g, z, t, lam, mu = lanes.d, lanes.g, lanes.z, lanes.t, lanes.lam, lanes.mu
    while len(d):
        row = rates[d, g, z].copy()  # (m, S) rates out of each lane's stage
        own = (z == rep) & ~np.isnan(lam)
        if own.any():
            row[own] = exits[d[own]]
            row[own, rep] = lam[own]
            row[own, -1] += mu[own] if silent else 0.0
        k = row.sum(axis=1)
        t = t + rng.exponential(1.0, len(d)) / np.where(k > 0, k, 1.0)
        go = (k > 0) & (t < horizon)
        cum = np.cumsum(row[go], axis=1)
        u = rng.random(int(go.sum())) * cum[:, -1]
        target = np.minimum((cum < u[:, None]).sum(axis=1), s_n - 1)
        d, g, t, lam, mu = d[go], g[go], t[go], lam[go], mu[go]
        seen = target != s_n - 1
        period = np.minimum((t // period_days).astype(int), n_periods - 1)
        np.add.at(out, (d[seen], period[seen], target[seen]), 1)
        d, g, z, t, lam, mu = d[seen], g[seen], target[seen], t[seen], lam[seen], mu[seen]
    return out


# ----------------------------------------------------------------------------- backtests
@dataclass(frozen=True)
class Backtest:
    """A backtest's tables (see :func:`backtest_journeys`)."""

    cutoff: pd.Timestamp
    end: pd.Timestamp
    totals: pd.DataFrame  # stage, cohort, forecast_mean, forecast_p05, forecast_p95, actual
    periods: pd.DataFrame  # the same per period (period_start)
    cumulative: dict[str, np.ndarray]  # "forecast" (draws, periods, stages), "actual"
    fit: FittedFunnel
    homogeneous: pd.DataFrame | None  # totals of the one-rate model, with heterogeneity


def _problem(where: str, message: str, hint: str, label: str) -> ScenarioError:
    return ScenarioError([Problem((where,), message, hint, file=label)], label)


def actual_entries(
    rows: list, stages: list[str], cutoff: pd.Timestamp, end: pd.Timestamp, period_days: float
) -> dict[str, np.ndarray]:
    """Entries ``(periods, stages)`` after ``cutoff`` by cohort, from event rows."""
    ids = np.concatenate([r[0] for r in rows])
    ns = np.concatenate([r[1] for r in rows])
    names = np.concatenate([r[2] for r in rows])
    codes = pd.factorize(pd.Series(ids, dtype=object))[0]
    first = pd.Series(ns).groupby(codes).transform("min").to_numpy()
    after = ns > cutoff.value
    horizon = (end - cutoff) / _DAY
    n_periods = int(np.ceil(horizon / period_days - 1e-9))
    days = (ns[after] - cutoff.value) / 86_400e9
    period = np.minimum((days // period_days).astype(int), n_periods - 1)
    stage = pd.Index(stages).get_indexer(names[after])
    ok = (stage >= 0) & (stage != len(stages) - 1)
    out = {}
    for cohort, mask in (
        ("known", first[after] <= cutoff.value),
        ("new", first[after] > cutoff.value),
    ):
        m = ok & mask
        a = np.zeros((n_periods, len(stages)))
        np.add.at(a, (period[m], stage[m]), 1)
        out[cohort] = a
    return out


def backtest_journeys(
    data: str | Path,
    cutoff: str | pd.Timestamp,
    *,
    period_days: float = 7.0,
    draws: int = 200,
    seed: int | None = None,
    fit_options: dict[str, Any] | None = None,
    on_phase: Callable[[str], None] | None = None,
) -> Backtest:
    """Fit ``data`` (an event log) up to ``cutoff``, forecast to the end of the data,
    and compare with what happened. ``fit_options`` go to
    :func:`~funnelsim.inference.api.fit_history` (``columns``, ``stage_map``,
    ``funnel``, ``heterogeneity``, sampler settings, …)."""
    from funnelsim.data.events import read_events
    from funnelsim.inference.api import fit_history

    say = on_phase or (lambda text: None)
    label = str(data)
    options = dict(fit_options or {})
    try:
        cut = pd.Timestamp(cutoff)
    except (ValueError, TypeError):
        raise _problem(
            "--cutoff", f"{cutoff!r} is not a date", "e.g. --cutoff 2026-05-01", label
        ) from None
    if cut.tz is not None:
        cut = cut.tz_convert("UTC").tz_localize(None)
    say(f"reading {Path(data).name} to its end (what happened after the cutoff) …")
    rows: list = []
    stats = read_events(
        data, columns=options.get("columns"), stage_map=options.get("stage_map"), rows=rows
    )
    first, end = pd.Timestamp(stats.start), pd.Timestamp(stats.end)
    before, after = (cut - first) / _DAY, (end - cut) / _DAY
    if not first < cut < end:
        raise _problem(
            "--cutoff",
            f"the cutoff {cut:%Y-%m-%d %H:%M} is outside the data ({first:%Y-%m-%d} to "
            f"{end:%Y-%m-%d %H:%M})",
            "choose a date inside the data, with enough of it on both sides",
            label,
        )
    if before < MIN_DAYS or after < MIN_DAYS:
        side = "before" if before < MIN_DAYS else "after"
        raise _problem(
            "--cutoff",
            f"the cutoff leaves {min(before, after):.1f} days of data {side} it; a backtest "
            f"needs at least {MIN_DAYS:g} on each side",
            f"choose a cutoff between {first + MIN_DAYS * _DAY:%Y-%m-%d} and "
            f"{end - MIN_DAYS * _DAY:%Y-%m-%d}",
            label,
        )
    say(f"fitting the data up to {cut:%Y-%m-%d %H:%M} …")
    fit = fit_history(data, "journeys", until=cut, on_phase=say, **options)
    horizon = float(after)
    say(f"forecasting {horizon:.0f} days after the cutoff, {draws} draws …")
    stages = list(fit.stages)
    actual = actual_entries(rows, stages, cut, end, period_days)
    forecasts = {
        "main": forecast_entries(fit, horizon, period_days=period_days, draws=draws, seed=seed)
    }
    if fit.repeat_info and fit.repeat_info.get("heterogeneity") != "none":
        forecasts["none"] = forecast_entries(
            fit, horizon, period_days=period_days, draws=draws, seed=seed, heterogeneity="none"
        )
    tables = {k: _tables(f, actual, stages, cut, period_days) for k, f in forecasts.items()}
    fc = forecasts["main"]
    return Backtest(
        cutoff=cut,
        end=end,
        totals=tables["main"][0],
        periods=tables["main"][1],
        cumulative={
            "forecast": np.cumsum(fc["known"] + fc["new"], axis=1),
            "actual": np.cumsum(actual["known"] + actual["new"], axis=0),
        },
        fit=fit,
        homogeneous=tables["none"][0] if "none" in tables else None,
    )


def _tables(
    forecast: dict[str, np.ndarray],
    actual: dict[str, np.ndarray],
    stages: list[str],
    cutoff: pd.Timestamp,
    period_days: float,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    forecast = {**forecast, "all": forecast["known"] + forecast["new"]}
    actual = {**actual, "all": actual["known"] + actual["new"]}
    totals, periods = [], []
    for i, stage in enumerate(stages):
        if stage == LOST:
            continue
        for cohort in COHORTS:
            f, a = forecast[cohort][:, :, i], actual[cohort][:, i]
            tot = f.sum(axis=1)
            lo, hi = np.quantile(tot, [0.05, 0.95])
            totals.append(
                {"stage": stage, "cohort": cohort, "forecast_mean": tot.mean(),
                 "forecast_p05": lo, "forecast_p95": hi, "actual": a.sum()}
            )  # fmt: skip
            plo, phi = np.quantile(f, [0.05, 0.95], axis=0)
            for k in range(f.shape[1]):
                periods.append(
                    {"stage": stage, "cohort": cohort,
                     "period_start": (cutoff + k * period_days * _DAY).isoformat(),
                     "forecast_mean": f[:, k].mean(), "forecast_p05": plo[k],
                     "forecast_p95": phi[k], "actual": a[k]}
                )  # fmt: skip
    return pd.DataFrame(totals), pd.DataFrame(periods)


def coverage(periods: pd.DataFrame, cohort: str = "all") -> float:
    """Share of (stage, period) cells whose actual entries fall in the 90% interval."""
    rows = periods[periods["cohort"] == cohort]
    inside = (rows["forecast_p05"] <= rows["actual"]) & (rows["actual"] <= rows["forecast_p95"])
    return float(inside.mean()) if len(rows) else float("nan")


def backtest_figure(bt: Backtest, period_days: float = 7.0) -> Any:
    """Cumulative entries into each stage after the cutoff: the forecast's mean and 90%
    band against what happened (all customers, known and new)."""
    import matplotlib.dates as mdates
    from matplotlib.figure import Figure

    stages = [s for s in bt.fit.stages if s != LOST]
    fc, act = bt.cumulative["forecast"], bt.cumulative["actual"]
    shown = [i for i, _ in enumerate(stages) if act[-1, i] > 0 or fc[:, -1, i].mean() >= 0.5]
    cols = min(3, len(shown)) or 1
    rows = -(-len(shown) // cols) or 1
    fig = Figure(figsize=(4.2 * cols, 3.0 * rows + 0.6), layout="constrained")
    n_periods = fc.shape[1]
    ends = [min(bt.cutoff + (k + 1) * period_days * _DAY, bt.end) for k in range(n_periods)]
    x = np.array([bt.cutoff, *ends], dtype="datetime64[ns]")
    for k, i in enumerate(shown):
        ax = fig.add_subplot(rows, cols, k + 1)
        lo, hi = np.quantile(fc[:, :, i], [0.05, 0.95], axis=0)
        zero = [0.0]
        ax.fill_between(x, [*zero, *lo], [*zero, *hi], color="#9ecae1", alpha=0.6, lw=0,
                        label="forecast, 90% band")  # fmt: skip
        ax.plot(x, [*zero, *fc[:, :, i].mean(axis=0)], color="#3182bd", lw=1.8,
                label="forecast, mean")  # fmt: skip
        ax.plot(x, [*zero, *act[:, i]], color="#222222", lw=1.4, marker="o", ms=3,
                label="what happened")  # fmt: skip
        ax.set_title(stages[i], fontsize=10)
        ax.set_ylabel("entries since the cutoff", fontsize=8)
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%d %b"))
        ax.xaxis.set_major_locator(mdates.AutoDateLocator(minticks=2, maxticks=4))
        ax.tick_params(labelsize=8)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.25)
        if k == 0:
            ax.legend(fontsize=7, loc="upper left", frameon=False)
    fig.suptitle(
        f"Backtest: fitted up to {bt.cutoff:%Y-%m-%d}, forecast to {bt.end:%Y-%m-%d}",
        fontsize=11,
    )
    return fig
