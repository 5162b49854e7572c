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

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from funnelsim.errors import Problem, ScenarioError
from funnelsim.funnel import LOST
from funnelsim.inference.fitted import FittedFunnel
from funnelsim.inference.nowcast import KnownCustomers

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
    rng = np.random.default_rng(seed)
    all_rates = fit.rate_draws()
    pick = np.linspace(0, len(all_rates) - 1, min(draws, len(all_rates))).round().astype(int)
    rates = all_rates[pick]  # (D, G, S, S)
    d_n, _, s_n, _ = rates.shape
    stages = list(fit.stages)
    n_periods = int(np.ceil(horizon / period_days - 1e-9))

    # the repeat stage, customer by customer
    info = fit.repeat_info
    rep = stages.index(info["stage"]) if info else -1
    model = fit.repeat_model(heterogeneity, max_draws=d_n) if info else None
    known_now = KnownCustomers.of(fit, model)
    silent, seg, stage = known_now.silent, known_now.seg, known_now.stage
    h = known_now.histories
    exits = np.zeros((d_n, s_n))
    m_pick = np.arange(d_n) % model.n_draws if model is not None else np.zeros(d_n, int)
    if model is not None and h is not None:
        for j, target in enumerate(h.targets):
            exits[:, stages.index(target)] = model.nu_j[m_pick, j]

    # known customers: one lane per draw and customer, if still there
    own_p = model.p_alive(h) if model is not None and h is not None else None
    p = known_now.p_active(rates, p_repeat=own_p)
    n = len(stage)
    lam = np.full((d_n, n), np.nan)
    mu = np.full((d_n, n), np.nan)
    if model is not None and h is not None and known_now.where is not None:
        mine = known_now.mine
        sub = known_now.where[mine]
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
    """Entries ``(periods, stages)`` after ``cutoff`` up to ``end`` by cohort, from event
    rows."""
    ids = np.concatenate([r[0] for r in rows])
    ns = np.concatenate([r[1] for r in rows])
    names = np.concatenate([r[2] for r in rows])
    codes = pd.factorize(pd.Series(ids, dtype=object))[0]
    first = pd.Series(ns).groupby(codes).transform("min").to_numpy()
    after = (ns > cutoff.value) & (ns <= end.value)
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
    horizon: float | None = None,
    period_days: float = 7.0,
    draws: int = 200,
    seed: int | None = None,
    fit_options: dict[str, Any] | None = None,
    on_phase: Callable[[str], None] | None = None,
) -> Backtest:
    """Fit ``data`` (an event log) up to ``cutoff``, forecast ``horizon`` days (default:
    to the end of the data) and compare with what happened. ``fit_options`` go to
    :func:`~funnelsim.inference.api.fit_history` (``columns``, ``stage_map``,
    ``funnel``, ``heterogeneity``, sampler settings, …)."""
    return rolling_backtest(
        data, [cutoff], horizon=horizon, period_days=period_days, draws=draws, seed=seed,
        fit_options=fit_options, on_phase=on_phase,
    )[0]  # fmt: skip


def rolling_cutoffs(
    first: str | pd.Timestamp, every: float, end: pd.Timestamp, horizon: float | None
) -> list[pd.Timestamp]:
    """Cutoffs from ``first`` every ``every`` days while a whole ``horizon`` (default
    :data:`MIN_DAYS`) of data is left after them."""
    need = (horizon if horizon is not None else MIN_DAYS) * _DAY
    out, cut = [], pd.Timestamp(first)
    while cut + need <= end:
        out.append(cut)
        cut = cut + every * _DAY
    return out or [pd.Timestamp(first)]


def rolling_backtest(
    data: str | Path,
    cutoffs: Sequence[str | pd.Timestamp],
    *,
    horizon: float | None = None,
    every: float | None = None,
    period_days: float = 7.0,
    draws: int = 200,
    seed: int | None = None,
    fit_options: dict[str, Any] | None = None,
    on_phase: Callable[[str], None] | None = None,
) -> list[Backtest]:
    """:func:`backtest_journeys` at each of ``cutoffs`` (or, with ``every``, from the
    first cutoff every ``every`` days while a whole ``horizon`` is left). What happened
    is read once; each cutoff's fit reads the log up to it. With a ``horizon`` every
    cutoff is judged over the same number of days (cut short only by the end of the
    data), so the errors over time are comparable."""
    from funnelsim.data.events import read_events
    from funnelsim.inference.api import fit_history

    say = on_phase or (lambda text: None)
    label = str(data)
    options = dict(fit_options or {})
    cuts = [_parse_cutoff(cutoff, label) for cutoff in cutoffs]
    _check_horizon(horizon, label)
    say(f"reading {Path(data).name} to its end (what happened after the cutoff) …")
    rows: list = []
    stats = read_events(
        data, columns=options.get("columns"), stage_map=options.get("stage_map"), rows=rows
    )
    first, end = pd.Timestamp(stats.start), pd.Timestamp(stats.end)
    if every is not None:
        cuts = rolling_cutoffs(cuts[0], every, end, horizon)
    for cut in sorted(set(cuts)):
        _check_cutoff(cut, first, end, label)
    out = []
    for k, cut in enumerate(sorted(set(cuts))):
        stop = min(end, cut + horizon * _DAY) if horizon is not None else end
        which = f" ({k + 1} of {len(set(cuts))})" if len(set(cuts)) > 1 else ""
        say(f"fitting the data up to {cut:%Y-%m-%d %H:%M}{which} …")
        fit = fit_history(data, "journeys", until=cut, on_phase=say, **options)
        days = float((stop - cut) / _DAY)
        say(f"forecasting {days:.0f} days after the cutoff, {draws} draws …")
        out.append(_one_backtest(fit, rows, cut, stop, days, period_days, draws, seed))
    return out


def rolling_backtests(
    kind: str,
    data: str | Path,
    cutoffs: Sequence[str | pd.Timestamp],
    *,
    every: float | None = None,
    horizon: float | None = None,
    period_days: float = 7.0,
    draws: int = 200,
    seed: int | None = None,
    fit_options: dict[str, Any] | None = None,
    on_phase: Callable[[str], None] | None = None,
) -> list[Backtest]:
    """A backtest of ``kind`` data (``journeys``, ``snapshots`` or ``counts``) at each of
    ``cutoffs``, or with ``every`` from the first one every ``every`` days while a whole
    ``horizon`` (default :data:`MIN_DAYS`) of data is left after it; one fit per cutoff."""
    options = dict(fit_options or {})
    if kind == "journeys":
        return rolling_backtest(
            data, cutoffs, horizon=horizon, every=every, period_days=period_days, draws=draws,
            seed=seed, fit_options=options, on_phase=on_phase,
        )  # fmt: skip
    label = str(data)
    cuts = [_parse_cutoff(cutoff, label) for cutoff in cutoffs]
    _check_horizon(horizon, label)
    if every is not None:
        cuts = rolling_cutoffs(cuts[0], every, _data_end(kind, data, options), horizon)
    out: list[Backtest] = []
    for cut in sorted(set(cuts)):
        if kind == "counts":
            bt = backtest_counts(data, cut, horizon=horizon, fit_options=options, on_phase=on_phase)
        else:
            bt = backtest_snapshots(
                data, cut, horizon=horizon, period_days=period_days, draws=draws, seed=seed,
                fit_options=options, on_phase=on_phase,
            )  # fmt: skip
        if all(b.cutoff != bt.cutoff for b in out):  # counts: two cutoffs in one period
            out.append(bt)
    return out


def _data_end(kind: str, data: str | Path, options: Mapping[str, Any]) -> pd.Timestamp:
    """The end of snapshot or count data (counts: the end of the last period)."""
    if kind == "snapshots":
        from funnelsim.data.snapshots import read_snapshots

        frame = read_snapshots(
            data, columns=options.get("columns"), stage_map=options.get("stage_map")
        )
        return pd.Timestamp(frame["date"].max())
    from funnelsim.data.counts import read_counts
    from funnelsim.funnel import Funnel
    from funnelsim.inference.api import load_funnel_file

    funnel = options.get("funnel")
    if funnel is None:
        raise _problem(
            "--funnel", "fitting counts needs the funnel's structure",
            "give --funnel FUNNEL.yaml: its stages and edges", str(data),
        )  # fmt: skip
    structure = funnel if isinstance(funnel, Funnel) else load_funnel_file(funnel)
    frame = read_counts(data, stages=list(structure.stages), columns=options.get("columns"))
    periods = pd.DatetimeIndex(sorted(frame["period"].unique()))
    step = periods[1] - periods[0] if len(periods) > 1 else _DAY
    return periods[-1] + step


def _check_horizon(horizon: float | None, label: str) -> None:
    if horizon is not None and horizon < MIN_DAYS:
        raise _problem(
            "--horizon", f"a horizon of {horizon:g} days is too short",
            f"compare at least {MIN_DAYS:g} days after each cutoff", label,
        )  # fmt: skip


def _check_cutoff(cut: pd.Timestamp, first: pd.Timestamp, end: pd.Timestamp, label: str) -> None:
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
            f"the cutoff {cut:%Y-%m-%d} leaves {min(before, after):.1f} days of data {side} "
            f"it; a backtest needs at least {MIN_DAYS:g} on each side",
            f"choose a cutoff between {first + MIN_DAYS * _DAY:%Y-%m-%d} and "
            f"{end - MIN_DAYS * _DAY:%Y-%m-%d}",
            label,
        )


def _one_backtest(
    fit: FittedFunnel,
    rows: list,
    cut: pd.Timestamp,
    stop: pd.Timestamp,
    days: float,
    period_days: float,
    draws: int,
    seed: int | None,
) -> Backtest:
    stages = list(fit.stages)
    actual = actual_entries(rows, stages, cut, stop, period_days)
    forecasts = {
        "main": forecast_entries(fit, days, period_days=period_days, draws=draws, seed=seed)
    }
    if fit.repeat_info and fit.repeat_info.get("heterogeneity") != "none":
        forecasts["none"] = forecast_entries(
            fit, days, period_days=period_days, draws=draws, seed=seed, heterogeneity="none"
        )
    tables = {k: _tables(f, actual, stages, cut, period_days) for k, f in forecasts.items()}
    fc = forecasts["main"]
    return Backtest(
        cutoff=cut,
        end=stop,
        totals=tables["main"][0],
        periods=tables["main"][1],
        cumulative={
            "forecast": np.cumsum(fc["known"] + fc["new"], axis=1),
            "actual": np.cumsum(actual["known"] + actual["new"], axis=0),
        },
        fit=fit,
        homogeneous=tables["none"][0] if "none" in tables else None,
    )


def main_cohort(totals: pd.DataFrame) -> str:
    """The cohort a backtest is judged on: ``all``, or ``known`` for snapshots."""
    return "all" if (totals["cohort"] == "all").any() else str(totals["cohort"].iloc[0])


def rolling_tables(bts: Sequence[Backtest]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every backtest's totals and periods, one above the other, with a first column
    ``cutoff`` (and ``days`` compared after it, in the totals)."""
    totals, periods = [], []
    for bt in bts:
        days = (bt.end - bt.cutoff) / _DAY
        totals.append(bt.totals.assign(cutoff=f"{bt.cutoff:%Y-%m-%d}", days=round(days, 3)))
        periods.append(bt.periods.assign(cutoff=f"{bt.cutoff:%Y-%m-%d}"))
    t, p = pd.concat(totals, ignore_index=True), pd.concat(periods, ignore_index=True)
    first = ["cutoff", "days"]
    return t[first + [c for c in t.columns if c not in first]], p[
        ["cutoff"] + [c for c in p.columns if c != "cutoff"]
    ]


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


def _stage_panels(rows: pd.DataFrame, figure: Any) -> tuple[list[str], Any, int, int]:
    """The stages with something to show (an actual entry or a forecast of at least ½)
    and a figure for one panel each, three to a row."""
    shown = [
        s
        for s in dict.fromkeys(rows["stage"])
        if (rows.loc[rows["stage"] == s, "actual"] > 0).any()
        or (rows.loc[rows["stage"] == s, "forecast_mean"] >= 0.5).any()
    ]
    cols = min(3, len(shown)) or 1
    n_rows = -(-len(shown) // cols) or 1
    fig = figure(figsize=(4.2 * cols, 3.0 * n_rows + 0.6), layout="constrained")
    return shown, fig, n_rows, cols


def rolling_figure(bts: Sequence[Backtest], kind: str = "journeys") -> Any:
    """A rolling backtest: for each stage, the forecast total after each cutoff (mean
    and 90% interval) against what happened (all customers; snapshots: known ones)."""
    import matplotlib.dates as mdates
    from matplotlib.figure import Figure

    what = "snapshots in the stage" if kind == "snapshots" else "entries"
    totals, _ = rolling_tables(bts)
    rows = totals[totals["cohort"] == main_cohort(totals)]
    shown, fig, n_rows, cols = _stage_panels(rows, Figure)
    days = sorted(set(rows["days"].round(1)))
    span = f"{days[0]:g} days" if len(days) == 1 else f"{days[0]:g}–{days[-1]:g} days"
    for k, stage in enumerate(shown):
        ax = fig.add_subplot(n_rows, cols, k + 1)
        mine = rows[rows["stage"] == stage]
        x = pd.to_datetime(mine["cutoff"]).to_numpy()
        mean = mine["forecast_mean"].to_numpy()
        err = np.vstack([mean - mine["forecast_p05"], mine["forecast_p95"] - mean])
        ax.errorbar(x, mean, yerr=err, fmt="o", color="#3182bd", ms=4, capsize=3, lw=1.4,
                    label="forecast: mean, 90% interval")  # fmt: skip
        ax.plot(x, mine["actual"], "D", color="#222222", ms=4, label="what happened")
        ax.set_title(stage, fontsize=10)
        ax.set_ylabel(f"{what} after the cutoff", fontsize=8)
        ax.set_xlabel("cutoff", fontsize=8)
        top = max(float(mine["forecast_p95"].max()), float(mine["actual"].max()), 1.0)
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%d %b"))
        ax.xaxis.set_major_locator(mdates.AutoDateLocator(minticks=2, maxticks=5))
        ax.tick_params(labelsize=8)
        ax.set_ylim(0, top * 1.1)
        ax.margins(x=0.15)
        ax.grid(alpha=0.25)
        if k == 0:
            ax.legend(fontsize=7, loc="best", frameon=False)
    fig.suptitle(f"Rolling backtest: {len(bts)} cutoffs, {what} in the {span} after each",
                 fontsize=11)  # fmt: skip
    return fig


def backtest_counts(
    data: str | Path,
    cutoff: str | pd.Timestamp,
    *,
    horizon: float | None = None,
    fit_options: dict[str, Any] | None = None,
    on_phase: Callable[[str], None] | None = None,
) -> Backtest:
    """Fit aggregate funnel counts up to ``cutoff`` (the periods that start from it are
    held out), forecast the held-out periods (``horizon`` days of them, default all)
    from where the Kalman filter leaves the funnel, and compare the entries series
    with what happened. Counts do not say who is who, so every row's cohort is
    ``all``. ``fit_options`` go to :func:`~funnelsim.inference.api.fit_history`
    (``funnel`` is required; ``spend``, ``priors``, ``columns``, sampler settings)."""
    from funnelsim.inference.api import fit_history

    say = on_phase or (lambda text: None)
    cut = _parse_cutoff(cutoff, str(data))
    say(f"fitting the periods before {cut:%Y-%m-%d} …")
    options = {k: v for k, v in (fit_options or {}).items() if k not in ("heterogeneity",)}
    fit = fit_history(data, "counts", until=cut, on_phase=say, **options)
    return counts_backtest(fit, horizon)


def counts_backtest(fit: FittedFunnel, horizon: float | None = None) -> Backtest:
    """The backtest tables of a counts fit that held out its last periods (``fit
    --holdout N``, or :func:`backtest_counts`): the entries series over the held-out
    periods (``horizon`` days of them, default all)."""
    from funnelsim.inference.count_fit import fitted_bands

    bands = fitted_bands(fit)
    if bands["holdout_start"] is None:
        raise ValueError("the fit held no periods out: fit with a cutoff or --holdout N")
    h0 = int(bands["holdout_start"])
    dates = pd.DatetimeIndex(bands["dates"])
    period = int(fit.data.get("period_days") or (dates[1] - dates[0]) / _DAY)
    n_hold = len(dates) - h0
    if horizon is not None:
        n_hold = max(1, min(n_hold, int(np.ceil(horizon / period - 1e-9))))
    keep = slice(h0, h0 + n_hold)
    stages = list(fit.stages)
    fc = np.zeros((bands["draws"].shape[0], n_hold, len(stages)))
    act = np.zeros((n_hold, len(stages)))
    for n, (stage, kind) in enumerate(bands["series"]):
        if kind == "entries" and stage in stages:
            fc[:, :, stages.index(stage)] += bands["draws"][:, keep, n]
            act[:, stages.index(stage)] += bands["observed"][keep, n]
    measured = {s for s, kind in bands["series"] if kind == "entries"}
    totals, periods = [], []
    for i, stage in enumerate(stages):
        if stage not in measured:
            continue
        tot = fc[:, :, i].sum(axis=1)
        lo, hi = np.quantile(tot, [0.05, 0.95])
        totals.append(
            {"stage": stage, "cohort": "all", "forecast_mean": tot.mean(), "forecast_p05": lo,
             "forecast_p95": hi, "actual": act[:, i].sum()}
        )  # fmt: skip
        plo, phi = np.quantile(fc[:, :, i], [0.05, 0.95], axis=0)
        for k in range(n_hold):
            periods.append(
                {"stage": stage, "cohort": "all", "period_start": dates[h0 + k].isoformat(),
                 "forecast_mean": fc[:, k, i].mean(), "forecast_p05": plo[k],
                 "forecast_p95": phi[k], "actual": act[k, i]}
            )  # fmt: skip
    start = dates[h0]
    return Backtest(
        cutoff=start,
        end=start + n_hold * period * _DAY,
        totals=pd.DataFrame(totals),
        periods=pd.DataFrame(periods),
        cumulative={"forecast": np.cumsum(fc, axis=1), "actual": np.cumsum(act, axis=0)},
        fit=fit,
        homogeneous=None,
    )


def _parse_cutoff(cutoff: str | pd.Timestamp, label: str) -> pd.Timestamp:
    try:
        cut = pd.Timestamp(cutoff)
    except (ValueError, TypeError):
        raise _problem(
            "--cutoff", f"{cutoff!r} is not a date", "e.g. --cutoff 2026-05-01", label
        ) from None
    return cut.tz_convert("UTC").tz_localize(None) if cut.tz is not None else cut


def backtest_snapshots(
    data: str | Path,
    cutoff: str | pd.Timestamp,
    *,
    horizon: float | None = None,
    period_days: float = 7.0,
    draws: int = 200,
    seed: int | None = None,
    fit_options: dict[str, Any] | None = None,
    on_phase: Callable[[str], None] | None = None,
) -> Backtest:
    """Fit CRM snapshots up to ``cutoff`` and forecast where the customers known by then
    are seen at their later snapshots (up to ``horizon`` days after it, default: the end
    of the data), against the stages the snapshots show.

    Each known customer starts in the stage of their last snapshot up to the cutoff;
    one future per posterior draw moves them between their later snapshot dates with
    the fitted chain's exact transition probabilities ``exp(Q t)``. The tables count
    snapshots per stage and period (cohort ``known``: snapshots do not record when new
    customers arrive, so they are not forecast)."""
    from funnelsim.data.snapshots import read_snapshots
    from funnelsim.inference.api import fit_history
    from funnelsim.inference.snapshots import transition_matrix

    say = on_phase or (lambda text: None)
    label = str(data)
    options = {k: v for k, v in (fit_options or {}).items() if k not in ("heterogeneity",)}
    cut = _parse_cutoff(cutoff, label)
    say(f"reading {Path(data).name} to its end (what happened after the cutoff) …")
    frame = read_snapshots(data, columns=options.get("columns"), stage_map=options.get("stage_map"))
    first, end = frame["date"].min(), frame["date"].max()
    _check_cutoff(cut, first, end, label)
    _check_horizon(horizon, label)
    stop = min(end, cut + horizon * _DAY) if horizon is not None else end
    say(f"fitting the snapshots up to {cut:%Y-%m-%d %H:%M} …")
    fit = fit_history(data, "snapshots", until=cut, on_phase=say, **options)
    stages = list(fit.stages)
    idx = {s: i for i, s in enumerate(stages)}
    before = frame[frame["date"] <= cut]
    last = before.groupby("customer_id").tail(1).set_index("customer_id")
    later = frame[(frame["date"] > cut) & (frame["date"] <= stop)]
    later = later[later["customer_id"].isin(last.index) & later["stage"].isin(idx)]
    later = later.sort_values(["customer_id", "date"], kind="stable")
    n_periods = int(np.ceil((stop - cut) / _DAY / period_days - 1e-9))
    period = np.minimum(((later["date"] - cut) / _DAY // period_days).astype(int), n_periods - 1)
    observed = later["stage"].map(idx).to_numpy()
    actual = np.zeros((n_periods, len(stages)))
    np.add.at(actual, (period.to_numpy(), observed), 1)

    # each later snapshot's gap since the customer's previous one, and that one's row
    prev_date = later.groupby("customer_id")["date"].shift(1)
    prev_date = prev_date.fillna(later["customer_id"].map(last["date"]))
    gap = ((later["date"] - prev_date) / _DAY).round(3).to_numpy()
    first_of = ~later["customer_id"].duplicated().to_numpy()
    start_state = later["customer_id"].map(last["stage"]).map(idx).to_numpy()
    seg_of = {s: g for g, s in enumerate(fit.segments)}
    seg = (
        later["customer_id"].map(last["segment"]).map(seg_of).fillna(0).astype(int).to_numpy()
        if "segment" in last.columns
        else np.zeros(len(later), int)
    )
    gaps, gap_index = np.unique(gap, return_inverse=True)
    rank = later.groupby("customer_id").cumcount().to_numpy()
    rates = fit.rate_draws()
    pick = np.linspace(0, len(rates) - 1, min(draws, len(rates))).round().astype(int)
    rng = np.random.default_rng(seed)
    forecast = np.zeros((len(pick), n_periods, len(stages)))
    for k, d in enumerate(pick):
        probs = []
        for g in range(rates.shape[1]):
            q = rates[d, g].copy()
            np.fill_diagonal(q, 0.0)
            np.fill_diagonal(q, -q.sum(axis=1))
            probs.append(transition_matrix(q, gaps))  # (gaps, S, S)
        p_all = np.stack(probs)  # (G, gaps, S, S)
        state = np.zeros(len(later), int)
        u = rng.random(len(later))
        # a customer's first later snapshot starts from their last one before the
        # cutoff, each next one from the state drawn for the previous (rows are sorted
        # by customer and date, so the previous snapshot is the row before)
        for r_k in range(int(rank.max(initial=-1)) + 1):
            here = rank == r_k
            src = np.where(first_of[here], start_state[here], state[np.nonzero(here)[0] - 1])
            p = p_all[seg[here], gap_index[here], src]  # (n, S)
            state[here] = np.minimum(
                (p.cumsum(axis=1) < u[here, None]).sum(axis=1), len(stages) - 1
            )
        np.add.at(forecast[k], (period.to_numpy(), state), 1)
    actual_d = {"known": actual, "new": np.zeros_like(actual)}
    fc_d = {"known": forecast, "new": np.zeros_like(forecast)}
    totals, periods = _tables(fc_d, actual_d, stages, cut, period_days)
    totals = totals[totals["cohort"] == "known"].reset_index(drop=True)
    periods = periods[periods["cohort"] == "known"].reset_index(drop=True)
    return Backtest(
        cutoff=cut,
        end=stop,
        totals=totals,
        periods=periods,
        cumulative={"forecast": forecast, "actual": actual},  # per period, not cumulative
        fit=fit,
        homogeneous=None,
    )


def snapshot_figure(bt: Backtest) -> Any:
    """A snapshot backtest: per stage and period, the known customers' snapshots that
    show the stage, forecast (mean, 90% band) against what the snapshots show."""
    import matplotlib.dates as mdates
    from matplotlib.figure import Figure

    periods = bt.periods
    shown, fig, n_rows, cols = _stage_panels(periods, Figure)
    for k, stage in enumerate(shown):
        ax = fig.add_subplot(n_rows, cols, k + 1)
        mine = periods[periods["stage"] == stage]
        starts = pd.to_datetime(mine["period_start"])
        edges = np.array([*starts, bt.end], dtype="datetime64[ns]")
        middle = edges[:-1] + (edges[1:] - edges[:-1]) / 2
        lo, hi = mine["forecast_p05"].to_numpy(), mine["forecast_p95"].to_numpy()
        ax.fill_between(edges, [*lo, lo[-1]], [*hi, hi[-1]], color="#9ecae1", alpha=0.6,
                        lw=0, step="post", label="forecast, 90% band")  # fmt: skip
        mean = mine["forecast_mean"].to_numpy()
        ax.step(edges, [*mean, mean[-1]], where="post", color="#3182bd", lw=1.8,
                label="forecast, mean")  # fmt: skip
        ax.plot(middle, mine["actual"], "o", color="#222222", ms=3.5,
                label="what the snapshots show")  # fmt: skip
        ax.set_title(stage, fontsize=10)
        ax.set_ylabel("snapshots in the stage", fontsize=8)
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%d %b"))
        ax.xaxis.set_major_locator(mdates.AutoDateLocator(minticks=2, maxticks=4))
        ax.tick_params(labelsize=8)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.25)
        if k == 0:
            ax.legend(fontsize=7, loc="best", frameon=False)
    fig.suptitle(
        f"Snapshot backtest: fitted up to {bt.cutoff:%Y-%m-%d}; known customers' later "
        "snapshots, by period",
        fontsize=11,
    )
    return fig
