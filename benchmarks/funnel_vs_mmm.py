"""Funnel vs one-KPI: whose estimate of a campaign's conversions is closer to the truth?

Each data set is simulated by funnelsim's count engine
(:func:`funnelsim.data.synthetic.simulate_counts`): 104 weeks of entries into
awareness, interest, desire and conversion (plus active customers) and weekly spend of
three campaigns with random on/off flighting:

* ``tv`` lifts arrivals into awareness (×1.6 at full pressure, half-life 10 days);
* ``social`` lifts awareness → interest (×1.8, half-life 5 days): an upper-funnel
  campaign whose conversions arrive weeks later, through interest and desire;
* ``coupons`` lifts desire → conversion (×2.0, no carryover).

The truth is the expected engine's conversions with all campaigns minus those without
campaign c (:func:`~funnelsim.data.synthetic.true_contributions`). Two fits of the
same data are compared against it:

* the standard one-KPI media-mix model (``benchmarks/_mmm.py``: weekly conversions on
  adstocked, saturated spend with trend and yearly seasonality, pymc-marketing's
  priors, sampled with nutpie), which sees conversions and spend only;
* funnelsim's aggregate-count fit (:func:`funnelsim.inference.count_fit.fit_counts`,
  contributions by :func:`~funnelsim.inference.count_fit.contributions`) of every
  stage's counts, when that fitter is importable.

Printed per data set: each campaign's true contribution, each method's posterior mean
and 94% interval, its error in %, and the seconds each fit took; for the MMM also how
well it fits conversions (R² of the posterior mean, convergence), and where its error
comes from: the delay from a week of spend to the conversions it causes, in the truth
(expected engine, one week's burst of spend at the campaign's typical level) and in
the MMM (its fitted adstock weights). With ``--sets N`` the mean absolute errors and
the share of 94% intervals holding the truth close the output.

    python benchmarks/funnel_vs_mmm.py --sets 3 --seed 2026

Options: ``--l-max`` (MMM adstock window, weeks; default 8), ``--likelihood negbin``,
``--noise-free`` (fit the MMM to the expected engine's conversions, so what is left of
its error is its form, not the count noise), ``--sampler pymc``.

Measured (2 cores shared with two other fits, seeds 2026–2028, funnelsim's count fit
with random flows and the sampler's exit-split parameterisation, 4 chains × 1,000
draws). funnelsim's errors (94% interval holds the truth): tv +3.5%, +3.9%, +6.2%
(2/3), social −0.4%, +0.3%, +1.3% (3/3), coupons −1.2%, −1.4%, +1.1% (3/3); all three
+0.9%, +1.4%, +3.0%. Every fit converged (R-hat ≤ 1.005, bulk ESS ≥ 989, no
divergences); 842–1,470 s per fit on the busy machine. (The fitter as first committed,
with mean flows only, erred by +5% to +9% on tv and held the truth in 4 of 9 intervals.)

The MMM fits conversions with R² 0.90–0.92, but its residual sd (81–90 a week) is 2.5×
the count noise (34), and the misfit stays without any noise (``--noise-free``: R² 0.90–0.94,
residual sd 71–89). Errors of its posterior mean (94% interval holds the truth): tv
−59%, −97%, −95% (0/3), social +43%, +85%, +15% (2/3), coupons +44%, +43%, +50% (0/3);
noise-free the same (tv −88%, social +46%, coupons +46% on average). The campaigns'
total is about right (+2.5%, −1.7%, −14%): the MMM splits it wrongly, and the errors
come from its form. tv's conversions arrive 2–12 weeks after the spend (mean lag 7.4
weeks, through awareness, interest and desire) and social's peak 2–4 weeks after it,
while geometric adstock puts its largest weight on the spend's own week; tv's late
conversions are credited to social and coupons. Coupons bring conversions forward (the
week's extra conversions are 1.6× the net gain, fewer follow), which a non-negative
adstock cannot express, so the MMM credits the whole spike. A longer window
(``--l-max 13``, seed 2026) moves tv to −48% and social to +33%, with worse convergence
(31 divergences, R-hat 1.05); ``--likelihood negbin`` gives −60% / +19% / +38%. The
MMM's few divergences (0–11 of 4,000 draws, where tv's β is near 0) do not drive its
errors: sampled with nutpie's ``target_accept=0.95`` (seed 2028) it has none and the
same contributions within 5%. Each MMM fit takes 8–14 s with a warm nutpie cache (6–9 s
of it compiling; a cold compile about 40 s).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from _mmm import fit_mmm

from funnelsim.campaigns import Campaign
from funnelsim.data.synthetic import random_flights, simulate_counts, true_contributions
from funnelsim.funnel import Funnel

START = "2024-01-01"
PERIODS = 104
STAGES = ("awareness", "interest", "desire", "conversion")
GOAL = "conversion"
#: the true funnel (as in the shipped example, scenarios/data/): mean dwell in days, routing
DWELL = {"awareness": 12.0, "interest": 10.0, "desire": 13.0, "conversion": 120.0}
ROUTING = {
    "awareness": {"interest": 0.35, "lost": 0.65},
    "interest": {"desire": 0.4, "awareness": 0.15, "lost": 0.45},
    "desire": {"conversion": 0.45, "lost": 0.55},
    "conversion": {"lost": 1.0},
}
ARRIVALS = {"arrivals_per_day": 1500.0, "trend": 0.15, "yearly": 0.25, "peak_day": 330}


@dataclass(frozen=True)
class Truth:
    """One campaign's true settings (the shipped example's): ``half_saturation`` in
    adstocked spend per day; ``levels`` bound its daily spend in a burst."""

    target: str  # "arrivals" or an edge "a -> b"
    lift: float
    half_life_days: float | None
    half_saturation: float
    levels: tuple[float, float]


CAMPAIGNS = {
    "tv": Truth("arrivals", 1.6, 10.0, 100_000.0, (3000.0, 15000.0)),
    "social": Truth("awareness -> interest", 1.8, 5.0, 20_000.0, (1500.0, 6000.0)),
    "coupons": Truth("desire -> conversion", 2.0, None, 1500.0, (800.0, 3000.0)),
}


def funnel() -> Funnel:
    return Funnel.from_routing(DWELL, ROUTING, goal=GOAL)


def campaign(name: str, spend: np.ndarray) -> Campaign:
    """``name``'s true campaign with daily ``spend`` over the history."""
    t = CAMPAIGNS[name]
    carry = 0.0 if t.half_life_days is None else 0.5 ** (1.0 / t.half_life_days)
    lifts: dict = {}
    if t.target == "arrivals":
        lifts["arrival_lifts"] = {"*": t.lift}
    else:
        source, target = (s.strip() for s in t.target.split("->"))
        lifts["edge_lifts"] = {(source, target): t.lift}
    n = len(spend)
    return Campaign(
        name, 0, n - 1, n, spend=spend, carryover=carry, half_saturation=t.half_saturation, **lifts
    )


def campaigns_for(seed: int) -> list[Campaign]:
    """Randomly flighted campaigns, one independent stream per campaign."""
    streams = np.random.SeedSequence(seed).spawn(len(CAMPAIGNS))
    return [
        campaign(name, random_flights(PERIODS, levels=t.levels, rng=np.random.default_rng(s)))
        for (name, t), s in zip(CAMPAIGNS.items(), streams, strict=True)
    ]


def response_by_week(name: str, weeks: int = 20) -> np.ndarray:
    """True extra conversions per week after one week of ``name``'s typical spend (the
    middle of its levels) in week 0, without seasonality or trend; shares summing to 1."""
    level = float(np.mean(CAMPAIGNS[name].levels))
    days = 7 * (weeks + 1)
    pulse = np.zeros(days)
    pulse[7:14] = level
    kwargs: dict[str, Any] = dict(start=START, periods=days, period_days=1, arrivals_per_day=1500.0)
    on, _ = simulate_counts(funnel(), [campaign(name, pulse)], engine="expected", **kwargs)
    off, _ = simulate_counts(funnel(), [campaign(name, 0 * pulse)], engine="expected", **kwargs)

    def daily(c: pd.DataFrame) -> np.ndarray:
        rows = c[(c.stage == GOAL) & (c.kind == "entries")]
        return rows["count"].to_numpy(float)

    extra = (daily(on) - daily(off))[7:].reshape(weeks, 7).sum(axis=1)
    return extra / extra.sum()


def mmm_response_by_week(alpha: np.ndarray, l_max: int, weeks: int = 20) -> np.ndarray:
    """The MMM's share of a week's effect landing l weeks later (posterior mean weights)."""
    w = alpha[:, None] ** np.arange(l_max)[None, :]
    w = (w / w.sum(axis=1, keepdims=True)).mean(axis=0)
    return np.pad(w, (0, max(0, weeks - l_max)))[:weeks]


def fit_funnelsim(
    counts: pd.DataFrame, spend: pd.DataFrame, seed: int, folder: Path
) -> tuple[dict[str, tuple[float, float, float]] | None, float, str]:
    """funnelsim's aggregate-count fit of every stage's counts, read from files as
    ``funnelsim fit --kind counts`` reads them: ``({campaign: (mean, low, high)},
    seconds, convergence)``, or ``(None, 0, reason)`` when the fitter is not available."""
    try:
        from funnelsim.data.counts import load_counts
        from funnelsim.inference.count_fit import contributions, fit_counts
        from funnelsim.inference.count_priors import read_count_priors
    except ImportError as exc:
        return None, 0.0, f"funnelsim fitter not available yet ({exc})"
    paths = {name: folder / f"{name}.csv" for name in ("counts", "spend")}
    counts.to_csv(paths["counts"], index=False)
    spend.to_csv(paths["spend"], index=False)
    (folder / "priors.yaml").write_text(PRIORS)
    priors = read_count_priors(folder / "priors.yaml")
    data = load_counts(
        paths["counts"], paths["spend"], stages=STAGES, campaigns=tuple(priors.campaigns)
    )
    t0 = time.perf_counter()
    fit = fit_counts(data, planner_funnel(), priors, seed=seed)
    seconds = time.perf_counter() - t0
    table = contributions(fit)
    rows = table[table["stage"] == GOAL].set_index("campaign")
    columns = ["contribution_mean", "contribution_hdi_low", "contribution_hdi_high"]
    out = {c: tuple(float(rows.loc[c, k]) for k in columns) for c in CAMPAIGNS}
    d = fit.diagnostics()
    health = (
        f"R-hat ≤ {d.rhat_max:.3f}, bulk ESS ≥ {d.ess_bulk_min:.0f}, {d.divergences} divergences"
    )
    return out, seconds, health  # type: ignore[return-value]


def planner_funnel() -> Funnel:
    """The planner's rough guesses: the true structure, dwell times off by 25–40%."""
    guess = {"awareness": 9.0, "interest": 13.0, "desire": 9.0, "conversion": 90.0}
    return Funnel.from_routing(guess, ROUTING, goal=GOAL)


#: what the planner knows: which edge each campaign moves; vague effect priors
PRIORS = """\
rates: {sd_log: 1.0}
latent: []
campaigns:
  tv: {moves: [arrivals], half_life_days: {median: 7, sd_log: 1.0}}
  social: {moves: [awareness -> interest], half_life_days: {median: 7, sd_log: 1.0}}
  coupons: {moves: [desire -> conversion], half_life_days: {median: 2, sd_log: 1.0}}
arrivals: {trend_sd: 0.5, yearly_terms: 2, seasonal_sd: 0.3}
noise: {sd: 0.1}
"""


def pct(estimate: float, truth: float) -> float:
    return 100.0 * (estimate - truth) / truth


def cell(mean: float, low: float, high: float, truth: float) -> str:
    """``mean [low, high] error%`` for the table."""
    interval = f"[{low:,.0f}, {high:,.0f}]"
    return f"{mean:>11,.0f} {interval:>19} {pct(mean, truth):>+7.1f}"


def summary(label: str, errors: pd.Series, covers: pd.Series) -> str:
    """Mean absolute and signed error (%) and interval coverage over data sets."""
    return (
        f"{label} {errors.abs().mean():6.1f}% (mean signed {errors.mean():+6.1f}%, "
        f"94% interval holds the truth {covers.sum()}/{len(covers)})"
    )


def one_set(
    seed: int, args: argparse.Namespace, folder: Path, responses: dict[str, np.ndarray]
) -> list[dict]:
    """Simulate, fit both ways, print the table; one row per campaign for the summary."""
    f = funnel()
    camps = campaigns_for(seed)
    kwargs: dict[str, Any] = dict(start=START, periods=PERIODS, **ARRIVALS)
    counts, spend = simulate_counts(f, camps, occupancy=[GOAL], seed=seed, **kwargs)
    truth = true_contributions(f, camps, **kwargs)
    mean_counts, _ = simulate_counts(f, camps, engine="expected", **kwargs)
    expected = mean_counts[(mean_counts.stage == GOAL) & (mean_counts.kind == "entries")]
    goal = counts[(counts.stage == GOAL) & (counts.kind == "entries")]
    y = goal["count"].to_numpy(float)
    dates = pd.DatetimeIndex(pd.to_datetime(goal["period"]))
    x = spend[list(CAMPAIGNS)].to_numpy(float).T

    if args.noise_free:  # the expected engine's conversions: only the model's form is left
        y = expected["count"].to_numpy(float)
    mmm = fit_mmm(
        y, x, dates, seed=seed, l_max=args.l_max, likelihood=args.likelihood, sampler=args.sampler
    )
    fun, fun_s, note = fit_funnelsim(counts, spend, seed, folder)
    noise_sd = float(np.std(y - expected["count"].to_numpy(float)))
    resid_sd = float(np.std(y - mmm["mu"].mean(axis=0)))

    print(
        f"\n== data set seed {seed}: {y.sum():,.0f} conversions in {PERIODS} weeks; "
        f"MMM fit {float(mmm['seconds']):.1f} s ({float(mmm['compile_seconds']):.1f} s "
        f"compiling, {mmm['sampler']}; R² {float(mmm['r2']):.3f}, residual sd "
        f"{resid_sd:.0f} vs count noise sd {noise_sd:.0f}, "
        f"R-hat ≤ {float(mmm['rhat']):.3f}, bulk ESS ≥ {float(mmm['ess_bulk']):.0f}, "
        f"{int(mmm['divergences'])} divergences)"
        + (f"; funnelsim fit {fun_s:.1f} s ({note})" if fun else "")
    )
    columns = f"{'mean':>11} {'94% interval':>19} {'err%':>7}"
    header = f"{'campaign':<9}{'moves':<23}{'truth':>9} | MMM {columns}"
    print(header + (f" | funnelsim {columns}" if fun else ""))
    rows = []
    for i, name in enumerate(CAMPAIGNS):
        draws = mmm["contributions"][:, i]
        m = float(draws.mean())
        lo, hi = (float(v) for v in np.quantile(draws, [0.03, 0.97]))
        true = truth[name]
        line = f"{name:<9}{CAMPAIGNS[name].target:<23}{true:>9,.0f} | MMM {cell(m, lo, hi, true)}"
        row = {"campaign": name, "mmm_err": pct(m, true), "mmm_cover": lo <= true <= hi}
        if fun:
            fm, flo, fhi = fun[name]
            line += f" | funnelsim {cell(fm, flo, fhi, true)}"
            row |= {"fun_err": pct(fm, true), "fun_cover": flo <= true <= fhi}
        print(line)
        rows.append(row)
    total = sum(truth.values())
    draws = mmm["contributions"].sum(axis=1)
    lo, hi = (float(v) for v in np.quantile(draws, [0.03, 0.97]))
    line = f"{'all three':<32}{total:>9,.0f} | MMM {cell(float(draws.mean()), lo, hi, total)}"
    if fun:
        summed = sum(v[0] for v in fun.values())  # interval of a sum: not from the table
        line += f" | funnelsim {summed:>11,.0f} {'':>19} {pct(summed, total):>+7.1f}"
    print(line)
    if not fun:
        print(note)
    print("share of a week's extra conversions landing 0, 1, 2, … weeks after the spend:")
    for i, name in enumerate(CAMPAIGNS):
        true_w = responses[name]
        mmm_w = mmm_response_by_week(mmm["adstock_alpha"][:, i], args.l_max, len(true_w))
        lag_t = float(np.arange(len(true_w)) @ true_w)
        lag_m = float(np.arange(len(mmm_w)) @ mmm_w)
        lag = f"mean lag {lag_t:.1f} wk"
        if true_w.min() < -0.02:  # fewer conversions later: the campaign brings them forward
            lag = "brings conversions forward: fewer in later weeks"
        print(
            f"  {name:<8} truth {' '.join(f'{v:+.2f}' for v in true_w[:8])} ({lag})\n"
            f"  {'':<8} MMM   {' '.join(f'{v:+.2f}' for v in mmm_w[:8])} (mean lag {lag_m:.1f} wk)"
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=2026, help="seed of the first data set")
    parser.add_argument("--sets", type=int, default=1, help="simulated data sets")
    parser.add_argument("--l-max", type=int, default=8, help="MMM adstock window (weeks)")
    parser.add_argument("--likelihood", default="normal", choices=("normal", "negbin"))
    parser.add_argument(
        "--noise-free",
        action="store_true",
        help="fit the MMM to the expected engine's conversions (no count noise)",
    )
    parser.add_argument("--sampler", default="nutpie", choices=("nutpie", "pymc"))
    args = parser.parse_args()
    responses = {name: response_by_week(name) for name in CAMPAIGNS}
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(args.sets):
            rows += one_set(args.seed + k, args, Path(tmp), responses)
    table = pd.DataFrame(rows)
    print(f"\n== over {args.sets} data set(s): error of each campaign's conversions")
    for name, g in table.groupby("campaign", sort=False):
        line = f"{name:<9}" + summary("MMM", g["mmm_err"], g["mmm_cover"])
        if "fun_err" in g:
            line += " | " + summary("funnelsim", g["fun_err"], g["fun_cover"])
        print(line)


if __name__ == "__main__":
    main()
