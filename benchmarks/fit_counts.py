"""Recovery and holdout coverage of the aggregate-count fitter over simulated data sets.

Each data set is made by funnelsim's count engine (whole people, one-day steps; not the
model's own recursion) with the true funnel, arrivals and campaign effects of the
shipped example (``scenarios/data/make_counts.py``: 4 stages, a back edge, three
campaigns), but with new random flighted spend per set
(:func:`~funnelsim.data.synthetic.random_flights`) and a new engine seed. Every set is
fitted with the planner's rough funnel and priors (``scenarios/data/funnel.yaml`` and
``priors.yaml``), as a user would. Printed per parameter (every rate, lift, half-life
and half-saturation): the share of sets whose 94% HDI holds the truth with its binomial
standard error, and the identifiability verdict (the most frequent over the sets) with
the mean prior → posterior contraction — coverage is only expected where the data
inform the parameter (a weak parameter's interval is its prior's, centred on the
planner's guess, not on the truth). With ``--holdout 8`` also the share of held-out
counts inside the 90% predictive interval per series, pooled over the sets (nominal
90%), and the mean absolute % error of the forecast. Also the fits that fail the
convergence check (R-hat ≤ 1.01, ESS ≥ 400, no divergences) and seconds per fit.

The fitter compiles its model once per process and reuses it for data of the same
shape, so all sets run in one process (the first fit includes the compile, minutes
cold). Two processes with different ``--seed`` use both cores; ``--report`` reads
their CSVs together (``--report a.csv --report b.csv``).

    python benchmarks/fit_counts.py --sets 50 --chains 2 --holdout 8 --out coverage.csv

Measured: see the README ("Checked" under fitting from dashboard counts) for the
latest run and the settings it used.

A campaign without carryover (``coupons``: half-life 0) has a truth outside the
half-life prior's support; its row counts an HDI reaching below 1 day as covering.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd

from funnelsim.data.counts import load_counts
from funnelsim.data.synthetic import random_flights, simulate_counts
from funnelsim.funnel import LOST, Funnel
from funnelsim.inference.api import load_funnel_file
from funnelsim.inference.count_priors import read_count_priors
from funnelsim.inference.sampling import silence_warnings

silence_warnings()

DATA = Path(__file__).resolve().parent.parent / "scenarios" / "data"
#: daily spend levels of the random flights per campaign (the example's range)
LEVELS = {"tv": (4000.0, 15000.0), "social": (1500.0, 6000.0), "coupons": (800.0, 3000.0)}
#: a half-life below this (days) counts as "no carryover" for a true half-life of 0
NO_CARRYOVER_DAYS = 1.0


def example() -> ModuleType:
    """The example's generator script as a module (its truth: DWELL, NEXT, EFFECTS …)."""
    spec = importlib.util.spec_from_file_location("make_counts", DATA / "make_counts.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def truth_table(ex: ModuleType) -> dict[str, float]:
    """Parameter name (as in the identifiability table) → true value."""
    funnel = Funnel.from_routing(ex.DWELL, ex.NEXT, goal="conversion")
    out = {f"rate {a} -> {b}": float(funnel.rate(a, b)) for a, b in funnel.edges}
    for name, effect in ex.EFFECTS.items():
        out[f"lift {name}: {effect.moves}"] = effect.lift
        out[f"half-life {name}"] = effect.half_life_days
        out[f"half-saturation {name}"] = effect.half_saturation
    return out


def simulate(ex: ModuleType, periods: int, seed: int, folder: Path) -> tuple[Path, Path]:
    """One data set (counts.csv, spend.csv) in ``folder``: the example's truth with new
    random flights of every campaign and a new engine seed, all from ``seed``."""
    funnel = Funnel.from_routing(ex.DWELL, ex.NEXT, goal="conversion")
    streams = np.random.SeedSequence(seed).spawn(len(ex.EFFECTS) + 1)
    campaigns = []
    for stream, name in zip(streams, ex.EFFECTS):
        spend = random_flights(periods, levels=LEVELS[name], rng=np.random.default_rng(stream))
        days = periods * ex.PERIOD_DAYS
        campaigns.append(replace(ex.campaign(name), end=days - 1, n_days=days, spend=spend))
    counts, spend_table = simulate_counts(
        funnel,
        campaigns,
        start=ex.START,
        periods=periods,
        period_days=ex.PERIOD_DAYS,
        arrivals_per_day=ex.ARRIVALS["per_day"],
        trend=ex.ARRIVALS["trend"],
        yearly=ex.ARRIVALS["yearly"],
        peak_day=int(ex.ARRIVALS["peak_day"]),
        occupancy=ex.OCCUPANCY,
        burn_in=ex.BURN_IN,
        seed=int(streams[-1].generate_state(1)[0]),
    )
    counts_path, spend_path = folder / "counts.csv", folder / "spend.csv"
    counts.to_csv(counts_path, index=False)
    spend_table.to_csv(spend_path, index=False)
    return counts_path, spend_path


def covered(estimates: pd.DataFrame, truth: dict[str, float]) -> dict[str, tuple[bool, float]]:
    """Parameter → (94% HDI holds the truth, posterior mean) from ``fit.rates()`` and
    ``fit.effects()`` rows turned into ``parameter, mean, low, high``."""
    out = {}
    for row in estimates.itertuples():
        value = truth[row.parameter]
        if row.parameter.startswith("half-life") and value == 0:
            hit = row.low < NO_CARRYOVER_DAYS
        else:
            hit = row.low <= value <= row.high
        out[row.parameter] = (bool(hit), float(row.mean))
    return out


def estimates_of(fit) -> pd.DataFrame:  # noqa: ANN001 - FittedFunnel
    """``parameter, mean, low, high`` of every rate, lift, half-life, half-saturation."""
    rows = []
    for r in fit.rates().itertuples():
        name = f"rate {r.source} -> {r.target}"
        rows.append((name, r.rate_mean, r.rate_hdi_low, r.rate_hdi_high))
    for e in fit.effects().itertuples():
        target = "arrivals" if e.target.startswith("arrivals") else e.target
        rows.append((f"lift {e.campaign}: {target}", e.lift_mean, e.lift_hdi_low, e.lift_hdi_high))
        for what, col in (("half-life", "half_life_days"), ("half-saturation", "half_saturation")):
            name = f"{what} {e.campaign}"
            if name not in {x[0] for x in rows}:
                m, lo, hi = (getattr(e, f"{col}_{s}") for s in ("mean", "hdi_low", "hdi_high"))
                rows.append((name, m, lo, hi))
    return pd.DataFrame(rows, columns=["parameter", "mean", "low", "high"])


def run_set(args: argparse.Namespace, ex: ModuleType, k: int, seed: int) -> list[dict]:
    """Simulate and fit set ``k``; one long-format row per parameter and per held-out
    series."""
    from funnelsim.inference.count_fit import fit_counts, holdout_check, identifiability

    funnel = load_funnel_file(DATA / "funnel.yaml")
    priors = read_count_priors(DATA / "priors.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        counts_path, spend_path = simulate(ex, args.periods, seed, Path(tmp))
        data = load_counts(
            counts_path,
            spend_path,
            stages=[s for s in funnel.stages if s != LOST],
            latent=tuple(priors.latent),
            campaigns=list(priors.campaigns),
        )
    t0 = time.perf_counter()
    fit = fit_counts(
        data,
        funnel,
        priors,
        holdout=args.holdout,
        draws=args.draws,
        tune=args.tune,
        chains=args.chains,
        seed=seed,
    )
    seconds = time.perf_counter() - t0
    diag = fit.diagnostics()
    common = {
        "set": k,
        "seed": seed,
        "seconds": seconds,
        "converged": diag.ok,
        "diagnostics": "; ".join(diag.problems),
    }
    table, _ = identifiability(fit)
    ident = table.set_index("parameter")
    truth = truth_table(ex)
    rows = []
    for name, (hit, mean) in covered(estimates_of(fit), truth).items():
        rows.append(
            {
                **common,
                "what": "parameter",
                "name": name,
                "truth": truth[name],
                "mean": mean,
                "covered": hit,
                "contraction": float(ident.loc[name, "contraction"]),
                "verdict": ident.loc[name, "verdict"],
            }
        )
    for h in holdout_check(fit).itertuples():
        rows.append(
            {
                **common,
                "what": "holdout",
                "name": f"{h.stage}: {h.kind}",
                "periods": h.periods,
                "coverage_90": h.coverage_90,
                "mape": h.mean_abs_pct_error,
            }
        )
    return rows


def summary(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per parameter: sets, coverage and its binomial se, mean of posterior means,
    truth, mean contraction, most frequent verdict; per held-out series: pooled 90%
    coverage with its binomial se (counting each held-out period) and mean abs % error."""
    par = frame[frame["what"] == "parameter"]
    rows = []
    for name, g in par.groupby("name", sort=False):
        n, p = len(g), float(g["covered"].mean())
        rows.append(
            {
                "parameter": name,
                "sets": n,
                "coverage": p,
                "se": float(np.sqrt(p * (1 - p) / n)),
                "truth": float(g["truth"].iloc[0]),
                "mean_estimate": float(g["mean"].mean()),
                "contraction": float(g["contraction"].mean()),
                "verdict": g["verdict"].mode().iloc[0],
                "verdicts": ", ".join(f"{v} {c}" for v, c in g["verdict"].value_counts().items()),
            }
        )
    params = pd.DataFrame(rows)
    hold = frame[frame["what"] == "holdout"]
    rows = []
    for name, g in hold.groupby("name", sort=False):
        m = int(g["periods"].sum())
        p = float((g["coverage_90"] * g["periods"]).sum() / m)
        rows.append(
            {
                "series": name,
                "counts": m,
                "coverage_90": p,
                "se": float(np.sqrt(p * (1 - p) / m)),
                "mape": float(g["mape"].mean()),
            }
        )
    return params, pd.DataFrame(rows)


def report(frame: pd.DataFrame) -> None:
    params, hold = summary(frame)
    sets = frame.drop_duplicates("set")
    print(
        f"\n{len(sets)} data sets; {int((~sets['converged'].astype(bool)).sum())} failed the "
        f"convergence check; {sets['seconds'].mean():.1f} s per fit "
        f"(first, with compile: {sets['seconds'].iloc[0]:.1f} s; "
        f"median {sets['seconds'].median():.1f} s)"
    )
    print("\n94% HDI coverage of the truth (expected ≈ 94% for informed/pinned parameters)")
    print(f"{'parameter':42s} {'cover':>6s} {'± se':>6s} {'truth':>10s} {'mean est':>10s} "
          f"{'contr.':>6s} verdict")  # fmt: skip
    for r in params.itertuples():
        print(
            f"{r.parameter:42s} {r.coverage:6.0%} {r.se:6.1%} {r.truth:10.4g} "
            f"{r.mean_estimate:10.4g} {r.contraction:6.2f} {r.verdicts}"
        )
    ident = params[params["verdict"] != "weak"]
    if len(ident):
        hits = frame[(frame["what"] == "parameter") & frame["name"].isin(ident["parameter"])]
        p = float(hits["covered"].mean())
        print(
            f"identifiable (informed/pinned) parameters pooled: {p:.1%} "
            f"(naive se {np.sqrt(p * (1 - p) / len(hits)):.1%}, {len(hits)} intervals)"
        )
    if len(hold):
        print("\nheld-out counts inside the 90% predictive interval (nominal 90%)")
        for h in hold.itertuples():
            print(
                f"{h.series:26s} {h.coverage_90:6.1%} ± {h.se:4.1%} "
                f"({h.counts} counts)  mean abs error {h.mape:5.1f}%"
            )
        allh = frame[frame["what"] == "holdout"]
        p = float((allh["coverage_90"] * allh["periods"]).sum() / allh["periods"].sum())
        print(f"{'all series':26s} {p:6.1%} ({int(allh['periods'].sum())} counts)")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", type=int, default=50, help="data sets to simulate and fit")
    parser.add_argument("--periods", type=int, default=104, help="weeks per data set")
    parser.add_argument("--draws", type=int, default=500, help="draws per chain")
    parser.add_argument("--tune", type=int, default=500, help="tuning steps per chain")
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument(
        "--first",
        type=int,
        default=1,
        help="start at this set of the seed's sequence (continue an interrupted run)",
    )
    parser.add_argument("--holdout", type=int, default=8, help="last periods held out")
    parser.add_argument("--out", type=Path, default=None, help="CSV of per-set results")
    parser.add_argument(
        "--report",
        type=Path,
        action="append",
        default=None,
        help="only print the tables of CSVs from --out (repeat to pool runs)",
    )
    args = parser.parse_args(argv)
    if args.report is not None:
        parts = [pd.read_csv(path).assign(run=k) for k, path in enumerate(args.report)]
        frame = pd.concat(parts, ignore_index=True)
        frame["set"] = frame["run"] * 10_000 + frame["set"]  # sets of each run apart
        report(frame)
        good = frame[frame["converged"].astype(bool)]
        if len(good) and len(good) < len(frame):
            print("\nconverged fits only:")
            report(good)
        return
    ex = example()
    seeds = [
        int(s.generate_state(1)[0]) for s in np.random.SeedSequence(args.seed).spawn(args.sets)
    ]
    rows: list[dict] = []
    for k, seed in enumerate(seeds):
        if k + 1 < args.first:
            continue
        try:
            new = run_set(args, ex, k, seed)
        except Exception as exc:  # noqa: BLE001 - a failed fit is counted, not fatal
            print(f"set {k + 1}/{args.sets}: FAILED ({type(exc).__name__}: {exc})", flush=True)
            continue
        rows.extend(new)
        frame = pd.DataFrame(rows)
        if args.out is not None:
            frame.to_csv(args.out, index=False)
        par = frame[(frame["set"] == k) & (frame["what"] == "parameter")]
        hold = frame[(frame["set"] == k) & (frame["what"] == "holdout")]
        cov = f", holdout 90% coverage {hold['coverage_90'].mean():.0%}" if len(hold) else ""
        print(
            f"set {k + 1}/{args.sets}: {new[0]['seconds']:.1f} s, "
            f"{'converged' if new[0]['converged'] else 'NOT converged: ' + new[0]['diagnostics']}, "
            f"{int(par['covered'].sum())}/{len(par)} HDIs hold the truth{cov}",
            flush=True,
        )
    if rows:
        report(pd.DataFrame(rows))


if __name__ == "__main__":
    main()
