"""Simulated dashboard histories: weekly (or daily) funnel counts and spend per campaign.

:func:`simulate_counts` runs funnelsim's own engines on a
:func:`~funnelsim.dynamics.compile_model` model — the stochastic
:class:`~funnelsim.engines.counts.CountEngine` by default, or the
:class:`~funnelsim.engines.expected.ExpectedEngine` (its exact mean, same code path) —
and writes what a dashboard export would hold: entries into every stage per period
(plus, on request, occupancy at each period's end) and spend per campaign per period.
It makes known-truth data for testing the aggregate-count fitter and for the shipped
example in ``scenarios/data/``.

Baseline arrivals per day into the funnel's entry stage on day ``t`` of the history
(``T`` days long, day 0 = ``start``)::

    arrivals_per_day · exp(trend · t / T + yearly · cos(2π (doy − peak_day) / 365.25))

and the campaigns' arrival lifts multiply it. Before ``start`` the funnel runs
``burn_in`` periods without campaign spend, starting from the steady state of its
stages at the baseline arrivals of that moment; those periods are dropped, so the
history starts from a funnel close to its steady state.

:func:`true_contributions` gives what each campaign added to a stage's entries over the
history (expected engine, all campaigns minus all but one).

>>> from funnelsim.funnel import Funnel
>>> f = Funnel.from_routing({"visit": 10.0, "buyer": 50.0},
...     {"visit": {"buyer": 0.2, "lost": 0.8}, "buyer": {"lost": 1.0}}, goal="buyer")
>>> ad = Campaign("ads", 0, 27, 28, spend=flighted_spend(4, [(1, 2, 100.0)]),
...               half_saturation=100.0, edge_lifts={("visit", "buyer"): 2.0})
>>> counts, spend = simulate_counts(f, [ad], start="2024-01-01", periods=4,
...     arrivals_per_day=50.0, occupancy=["buyer"], seed=1)
>>> counts.head(3)
       period  stage  count       kind
0  2024-01-01  visit    361    entries
1  2024-01-01  buyer     61    entries
2  2024-01-01  buyer    480  occupancy
>>> spend.to_dict("list")
{'date': ['2024-01-01', '2024-01-08', '2024-01-15', '2024-01-22'], 'ads': [0.0, 700.0, 700.0, 0.0]}
>>> round(true_contributions(f, [ad], start="2024-01-01", periods=4,
...                          arrivals_per_day=50.0)["ads"], 1)
47.6
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pandas as pd

from funnelsim.campaigns import Campaign
from funnelsim.dynamics import CompiledModel, compile_model
from funnelsim.engines.base import RawRun
from funnelsim.engines.counts import CountEngine
from funnelsim.engines.expected import ExpectedEngine
from funnelsim.funnel import LOST, Funnel

__all__ = [
    "simulate_counts",
    "true_contributions",
    "baseline_arrivals",
    "steady_state",
    "flighted_spend",
    "random_flights",
    "simulate_repeat_journeys",
]

_KINDS = ("entries", "occupancy")


def baseline_arrivals(
    dates: pd.DatetimeIndex,
    history_start: str | pd.Timestamp,
    history_days: int,
    *,
    arrivals_per_day: float,
    trend: float = 0.0,
    yearly: float = 0.0,
    peak_day: int = 0,
) -> np.ndarray:
    """Baseline arrivals per day on ``dates`` (days; before the history too).

    ``arrivals_per_day · exp(trend · t/T + yearly · cos(2π (doy − peak_day)/365.25))``
    with ``t`` the days since ``history_start``, ``T = history_days`` and ``doy`` the day
    of the year (1 = 1 January).

    >>> days = pd.date_range("2024-01-01", periods=3)
    >>> baseline_arrivals(days, "2024-01-01", 2, arrivals_per_day=100.0, trend=0.5).round(2)
    array([100.  , 128.4 , 164.87])
    """
    t = (dates - pd.Timestamp(history_start)).days.to_numpy(dtype=float)
    doy = dates.day_of_year.to_numpy(dtype=float)
    season = yearly * np.cos(2.0 * np.pi * (doy - peak_day) / 365.25)
    return arrivals_per_day * np.exp(trend * t / history_days + season)


def steady_state(funnel: Funnel, arrivals_per_day: float, period_days: int = 7) -> dict[str, float]:
    """Expected people in each stage (``lost`` excepted) at the end of a step when
    ``arrivals_per_day`` have entered the funnel's entry stage for ever at constant
    rates, as the count engines step (on the clock they choose for ``period_days``
    periods): the fixed point of ``m = m P + a``.

    >>> f = Funnel.from_routing({"a": 10.0, "b": 50.0},
    ...     {"a": {"b": 0.2, "lost": 0.8}, "b": {"lost": 1.0}}, goal="b")
    >>> {k: round(v, 1) for k, v in steady_state(f, 30.0).items()}
    {'a': 315.2, 'b': 303.0}

    (In continuous time it would be 300 and 300: the engines count the day's arrivals
    at the end of the day, before any of them can leave.)
    """
    model = compile_model(
        funnel,
        start="2000-01-01",
        periods=1,
        step_days=float(period_days),
        arrivals_per_day=arrivals_per_day,
        arrival_stage=funnel.entry,
    )
    probs, dest, n = model.probs_at(0), model.dest, model.n_compartments
    step = np.zeros((n, n))
    step[np.arange(n), np.arange(n)] = probs[:, -1]
    for k in range(dest.shape[1]):
        rows = np.nonzero(dest[:, k] >= 0)[0]
        np.add.at(step, (rows, dest[rows, k]), probs[rows, k])
    arrivals = np.zeros(n)
    np.add.at(arrivals, model.arrival_comp, model.external_rate[0] * model.dt)
    live = model.stage_of != funnel.index(LOST)
    held = np.zeros(n)
    held[live] = np.linalg.solve((np.eye(live.sum()) - step[live][:, live]).T, arrivals[live])
    by_stage = np.bincount(model.stage_of, weights=held, minlength=funnel.n_stages)
    return {s: float(by_stage[i]) for i, s in enumerate(funnel.stages) if s != LOST}


def flighted_spend(
    periods: int, flights: Sequence[tuple[int, int, float]], period_days: int = 7
) -> np.ndarray:
    """Daily spend of on/off bursts: each flight ``(first_period, n_periods, per_day)``
    spends ``per_day`` on every day of its periods (flights may overlap: they add).

    >>> flighted_spend(3, [(1, 1, 10.0)], period_days=2).tolist()
    [0.0, 0.0, 10.0, 10.0, 0.0, 0.0]
    """
    spend = np.zeros(periods * period_days)
    for first, length, per_day in flights:
        spend[first * period_days : (first + length) * period_days] += per_day
    return spend


def random_flights(
    periods: int,
    *,
    levels: tuple[float, float],
    rng: int | np.random.Generator | None = None,
    on_periods: tuple[int, int] = (3, 8),
    off_periods: tuple[int, int] = (2, 8),
    period_days: int = 7,
) -> np.ndarray:
    """Daily spend of random flighting: bursts of ``on_periods`` periods (uniform,
    inclusive) at a level drawn uniformly from ``levels`` per day, separated by
    ``off_periods`` periods without spend. The first burst starts after 0 to
    ``off_periods[1]`` periods (uniform); a history too short for that gets one burst
    at its start.

    >>> s = random_flights(52, levels=(100.0, 300.0), rng=1)
    >>> s.shape, bool(s.max() <= 300.0), bool((s > 0).any()), bool((s == 0).any())
    ((364,), True, True, True)
    """
    gen = np.random.default_rng(rng)
    flights: list[tuple[int, int, float]] = []
    period = int(gen.integers(0, off_periods[1] + 1))
    while period < periods:
        length = int(gen.integers(on_periods[0], on_periods[1] + 1))
        flights.append((period, length, float(gen.uniform(*levels))))
        period += length + int(gen.integers(off_periods[0], off_periods[1] + 1))
    if not flights:  # pragma: no cover - only when the history is shorter than one gap
        flights.append((0, min(on_periods[0], periods), float(gen.uniform(*levels))))
    return flighted_spend(periods, flights, period_days)


def _campaign_with_burn_in(campaign: Campaign, pad: int, days: int) -> Campaign:
    """``campaign`` on a clock that starts ``pad`` days earlier, without spend then."""
    if campaign.spend is None:
        raise ValueError(f"campaign {campaign.name!r} has no daily spend")
    spend = np.asarray(campaign.spend, dtype=float)
    if spend.ndim != 1 or len(spend) < days:
        raise ValueError(
            f"campaign {campaign.name!r} has spend for {spend.shape[-1]} days; "
            f"the history has {days}"
        )
    if np.any(spend < 0) or not np.all(np.isfinite(spend)):
        raise ValueError(f"campaign {campaign.name!r} has negative or non-finite spend")
    return replace(
        campaign,
        spend=np.concatenate([np.zeros(pad), spend[:days]]),
        n_days=pad + days,
        start=campaign.start + pad,
        end=campaign.end + pad,
    )


def _compile(
    funnel: Funnel,
    campaigns: Sequence[Campaign],
    *,
    start: str,
    periods: int,
    period_days: int,
    arrivals_per_day: float,
    trend: float,
    yearly: float,
    peak_day: int,
    burn_in: int,
) -> CompiledModel:
    """The engine model of burn-in plus history, baseline arrivals set day by day."""
    if periods < 1 or burn_in < 0 or period_days < 1:
        raise ValueError("periods must be ≥ 1, burn_in ≥ 0 and period_days ≥ 1")
    if arrivals_per_day <= 0:
        raise ValueError("arrivals_per_day must be positive")
    pad, days = burn_in * period_days, periods * period_days
    first_day = pd.Timestamp(start) - pd.Timedelta(days=pad)
    level = baseline_arrivals(
        pd.DatetimeIndex([first_day]),
        start,
        days,
        arrivals_per_day=arrivals_per_day,
        trend=trend,
        yearly=yearly,
        peak_day=peak_day,
    )[0]
    initial = {k: float(round(v)) for k, v in steady_state(funnel, level, period_days).items()}
    model = compile_model(
        funnel,
        start=first_day,
        periods=burn_in + periods,
        step_days=float(period_days),
        initial=initial,
        arrivals_per_day=arrivals_per_day,
        arrival_stage=funnel.entry,
        campaigns=[_campaign_with_burn_in(c, pad, days) for c in campaigns],
    )
    day_of_step = np.minimum(
        (np.arange(model.n_steps) * model.dt + 1e-9).astype(int), pad + days - 1
    )
    shape = baseline_arrivals(
        pd.date_range(first_day, periods=pad + days),
        start,
        days,
        arrivals_per_day=1.0,
        trend=trend,
        yearly=yearly,
        peak_day=peak_day,
    )[day_of_step]
    external = np.broadcast_to(model.external_rate, (model.n_steps, model.n_cells)) * shape[:, None]
    return replace(model, external_rate=np.ascontiguousarray(external))


def _run(model: CompiledModel, engine: str, seed: int | None) -> RawRun:
    if engine == "counts":
        return CountEngine().run(model, 1, seed)
    if engine == "expected":
        return ExpectedEngine().run(model)
    raise ValueError(f"engine must be 'counts' or 'expected', not {engine!r}")


def simulate_counts(
    funnel: Funnel,
    campaigns: Sequence[Campaign],
    *,
    start: str,
    periods: int,
    period_days: int = 7,
    arrivals_per_day: float,
    trend: float = 0.0,
    yearly: float = 0.0,
    peak_day: int = 0,
    occupancy: Sequence[str] = (),
    burn_in: int = 26,
    engine: str = "counts",
    seed: int | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A simulated dashboard history: ``(counts, spend)``.

    ``counts`` is the long table ``period,stage,count,kind`` (``period`` an ISO date
    string): the entries into every stage (``lost`` excepted) in each period, and the
    people in each stage of ``occupancy`` at the period's end, ordered by period, then
    funnel stage, entries before occupancy. Counts are whole numbers from the count
    engine (``engine="counts"``, seeded by ``seed``), or their exact expectation
    (``engine="expected"``). ``spend`` has one row per period, ``date,<campaign>…``:
    each campaign's daily spend summed over the period's days.

    ``campaigns`` carry daily ``spend`` over the history (day 0 = ``start``; longer
    arrays are cut), with their ``carryover``, ``half_saturation``, ``shape``,
    ``edge_lifts`` and ``arrival_lifts`` (arrival channel ``"*"`` or ``"direct"``).
    See the module docstring for the baseline arrivals and the burn-in.
    """
    unknown = [s for s in occupancy if s not in funnel.stages or s == LOST]
    if unknown:
        raise ValueError(f"occupancy names stages not in the funnel: {', '.join(unknown)}")
    model = _compile(
        funnel,
        campaigns,
        start=start,
        periods=periods,
        period_days=period_days,
        arrivals_per_day=arrivals_per_day,
        trend=trend,
        yearly=yearly,
        peak_day=peak_day,
        burn_in=burn_in,
    )
    raw = _run(model, engine, seed)
    entries = raw.entries[0, burn_in:].sum(axis=-1)  # (T, S)
    held = raw.occupancy[0, burn_in:]
    dates = model.dates[burn_in:].strftime("%Y-%m-%d")
    rows: list[tuple[str, str, float, str]] = []
    for t, date in enumerate(dates):
        for s, stage in enumerate(funnel.stages):
            if stage == LOST:
                continue
            rows.append((date, stage, entries[t, s], "entries"))
            if stage in occupancy:
                rows.append((date, stage, held[t, s], "occupancy"))
    counts = pd.DataFrame(rows, columns=["period", "stage", "count", "kind"])
    if engine == "counts":
        counts["count"] = counts["count"].astype(np.int64)
    spend = pd.DataFrame({"date": list(dates)})
    for campaign in campaigns:
        daily = np.asarray(campaign.spend, dtype=float)[: periods * period_days]
        spend[campaign.name] = daily.reshape(periods, period_days).sum(axis=1)
    return counts, spend


def true_contributions(
    funnel: Funnel,
    campaigns: Sequence[Campaign],
    *,
    start: str,
    periods: int,
    period_days: int = 7,
    arrivals_per_day: float,
    trend: float = 0.0,
    yearly: float = 0.0,
    peak_day: int = 0,
    occupancy: Sequence[str] = (),
    burn_in: int = 26,
    engine: str = "expected",
    seed: int | None = None,
    stage: str | None = None,
) -> dict[str, float]:
    """Entries into ``stage`` (default: the funnel's goal) over the history with all
    campaigns minus those without campaign c, for each c, from the expected engine.

    Takes the same keyword arguments as :func:`simulate_counts`; ``occupancy``,
    ``engine`` and ``seed`` are accepted so one set of arguments serves both, and are
    not used (contributions are expectations).
    """
    del occupancy, engine, seed  # same arguments as simulate_counts; expectations only
    stage = stage or funnel.goal
    if stage not in funnel.stages or stage == LOST:
        raise ValueError(f"stage {stage!r} is not a stage of the funnel")
    s = funnel.index(stage)

    def total(active: Sequence[Campaign]) -> float:
        model = _compile(
            funnel,
            active,
            start=start,
            periods=periods,
            period_days=period_days,
            arrivals_per_day=arrivals_per_day,
            trend=trend,
            yearly=yearly,
            peak_day=peak_day,
            burn_in=burn_in,
        )
        return float(_run(model, "expected", None).entries[0, burn_in:, s].sum())

    everything = total(campaigns)
    return {
        c.name: everything - total([other for other in campaigns if other is not c])
        for c in campaigns
    }


def simulate_repeat_journeys(
    n: int,
    *,
    r: float = 0.6,
    alpha: float = 20.0,
    s: float = 0.8,
    beta: float = 120.0,
    days: float = 540.0,
    start: str = "2025-01-01",
    arrive_within: float = 0.6,
    first_purchase_days: float = 5.0,
    seed: int | np.random.Generator | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """An event log of customers who differ: the Pareto/NBD process as a journey.

    Each customer has a ``visit`` (uniform over the first ``arrive_within`` of the
    ``days``), a first ``purchase`` about ``first_purchase_days`` later (exponential),
    then repeat purchases at their own rate ``λ ~ Gamma(r, α)`` per day until they drop
    out unseen at their own rate ``μ ~ Gamma(s, β)`` (shape, rate). Returns the log
    (``customer_id, timestamp, stage``, in time order per customer) and the truth per
    customer (``customer_id, repeat_rate, dropout_rate, first_purchase, dropout``, times
    in days since ``start``).

    >>> log, truth = simulate_repeat_journeys(3, seed=1)
    >>> list(log.columns), sorted(log["stage"].unique())
    (['customer_id', 'timestamp', 'stage'], ['purchase', 'visit'])
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    arrive = rng.uniform(0.0, days * arrive_within, n)
    lam = rng.gamma(r, 1.0 / alpha, n)
    mu = rng.gamma(s, 1.0 / beta, n)
    enter = arrive + rng.exponential(first_purchase_days, n)
    death = enter + rng.exponential(1.0, n) / mu
    ids, times, stages = [], [], []
    for i in range(n):
        ids.append(i)
        times.append(arrive[i])
        stages.append("visit")
        t = enter[i]
        while t < min(death[i], days):
            ids.append(i)
            times.append(t)
            stages.append("purchase")
            t += rng.exponential(1.0 / lam[i])
    log = pd.DataFrame(
        {
            "customer_id": ids,
            "timestamp": pd.Timestamp(start) + pd.to_timedelta(np.array(times), unit="D"),
            "stage": stages,
        }
    )
    truth = pd.DataFrame(
        {
            "customer_id": np.arange(n),
            "repeat_rate": lam,
            "dropout_rate": mu,
            "first_purchase": enter,
            "dropout": death,
        }
    )
    return log, truth
