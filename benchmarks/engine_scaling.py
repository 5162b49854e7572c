"""Count-engine scaling benchmark: cost must not grow with the number of customers,
and should be that of the random draws themselves.

Measures :class:`funnelsim.engines.counts.CountEngine` on an 8-stage journey (stages
``s0..s7`` plus the absorbing ``lost``, with backward edges, skips and repeat events)
over 365 daily steps and 1000 replicates, with the whole population (1e3, 1e6, 1e9)
starting in ``s0`` and no arrivals. Side by side, in the same process:

* a **bare vectorised numpy loop** making the same multinomial draws
  (``benchmarks/bare_loop.py``: one ``Generator.multinomial`` call per step for all
  replicates and compartments); the ratio engine / bare is the engine's overhead;
* the engine with **one set of rates per replicate** (as forecasts from posterior
  draws run), which should cost the same as shared rates;
* a naive **per-customer** simulation of the same discrete-time chain
  (``funnel.step_matrix(1.0)``): one state per customer, one uniform draw per customer
  per day, vectorised over customers with numpy. It runs at smaller sizes and a few
  replicates; its cost per customer-replicate is extrapolated linearly to the larger
  populations (and labelled so).

A sanity check compares the mean last-day occupancy of both simulators with the exact
``initial @ P**365``.

Run::

    python benchmarks/engine_scaling.py            # full run (a few minutes)
    python benchmarks/engine_scaling.py --quick    # smoke test (100 replicates)
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from bare_loop import bare_loop

from funnelsim.dynamics import CompiledModel, compile_model
from funnelsim.engines.counts import CountEngine
from funnelsim.funnel import Funnel

DAYS = 365
STAGES = [f"s{i}" for i in range(8)]
# hazards per day; every stage's total is <= 0.5, so the engine's clock step is one day
RATES: dict[str, dict[str, float]] = {
    "s0": {"s1": 0.15, "s2": 0.03, "lost": 0.01},
    "s1": {"s2": 0.12, "s0": 0.04, "lost": 0.01},
    "s2": {"s3": 0.10, "s1": 0.05, "s4": 0.02, "lost": 0.01},
    "s3": {"s4": 0.12, "s2": 0.03, "lost": 0.01},
    "s4": {"s5": 0.15, "s3": 0.03, "lost": 0.01},
    "s5": {"s6": 0.20, "s4": 0.05, "lost": 0.01},
    "s6": {"s7": 0.10, "s6": 0.05, "lost": 0.005},  # s6 -> s6: repeat purchase
    "s7": {"s6": 0.01, "s7": 0.03, "s1": 0.02, "lost": 0.002},  # loyal; may re-enter s1
}


def journey() -> Funnel:
    """The benchmark journey: 8 stages s0..s7 + lost, goal s6 (last but one)."""
    return Funnel.from_rates(RATES, goal="s6", stages=STAGES)


def model_of(funnel: Funnel, population: int) -> CompiledModel:
    """The benchmark's compiled model: everyone in ``s0``, daily steps, no arrivals."""
    return compile_model(
        funnel, start="2026-01-01", periods=DAYS, dt=1.0, initial={STAGES[0]: float(population)}
    )


def run_counts(
    funnel: Funnel, population: int, replicates: int, seed: int, per_replicate: bool = False
) -> tuple[float, np.ndarray]:
    """Seconds for one count-engine run and its mean last-day occupancy; with
    ``per_replicate``, every replicate has its own rates (±10% around the journey's)."""
    model = model_of(funnel, population)
    if per_replicate:
        scale = np.random.default_rng(seed).uniform(0.9, 1.1, size=(replicates, 1, 1, 1))
        model = model.with_replicate_rates(scale * model.slot_rates[None])
    t0 = time.perf_counter()
    raw = CountEngine().run(model, replicates, seed)
    return time.perf_counter() - t0, raw.occupancy[:, -1].mean(axis=0)


def run_bare(funnel: Funnel, population: int, replicates: int, seed: int) -> float:
    """Seconds for the bare numpy loop making the same draws."""
    model = model_of(funnel, population)
    t0 = time.perf_counter()
    bare_loop(model, replicates, np.random.default_rng(seed))
    return time.perf_counter() - t0


def naive_cumulative(p: np.ndarray) -> np.ndarray:
    """Cumulative step-matrix rows, forced to exactly 1 from each row's last positive entry."""
    cum = np.cumsum(p, axis=1)
    last = p.shape[1] - 1 - np.argmax(p[:, ::-1] > 0, axis=1)
    cum[np.arange(p.shape[1])[None, :] >= last[:, None]] = 1.0
    return cum


def run_naive(
    p: np.ndarray, population: int, replicates: int, rng: np.random.Generator
) -> tuple[list[float], np.ndarray]:
    """Per-customer simulation; seconds per replicate and mean last-day occupancy."""
    cum = naive_cumulative(p)
    s = p.shape[0]
    totals = np.zeros(s)
    seconds = []
    for _ in range(replicates):
        t0 = time.perf_counter()
        state = np.zeros(population, dtype=np.intp)
        for _ in range(DAYS):
            u = rng.random(population)  # one uniform per customer per day
            state = (u[:, None] >= cum[state]).sum(axis=1)
        totals += np.bincount(state, minlength=s)
        seconds.append(time.perf_counter() - t0)
    return seconds, totals / replicates


def max_rel_diff(mean: np.ndarray, exact: np.ndarray, min_share: float = 0.005) -> float:
    """Largest |mean/exact - 1| over stages holding at least ``min_share`` of the population."""
    keep = exact >= min_share * exact.sum()
    return float(np.max(np.abs(mean[keep] / exact[keep] - 1.0)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 replicates, small naive sizes")
    parser.add_argument("--seed", type=int, default=20260101)
    parser.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="count-engine timings per population, best kept (default 3, quick 1)",
    )
    args = parser.parse_args()

    replicates = 100 if args.quick else 1000
    count_sizes = [10**3, 10**6, 10**9]
    naive_sizes = [10**3, 10**4] if args.quick else [10**3, 10**4, 10**5]
    naive_reps = 3 if args.quick else 5
    repeats = args.repeats or (1 if args.quick else 3)
    funnel = journey()
    p = funnel.step_matrix(1.0)
    rng = np.random.default_rng(args.seed)
    print(
        f"journey: {len(STAGES)} stages + lost, {len(funnel.edges)} edges, goal {funnel.goal}; "
        f"{DAYS} daily steps; seed {args.seed}"
    )

    run_counts(funnel, 1000, 2, args.seed)  # warm-up (imports, compiled-code cache)
    run_bare(funnel, 1000, 2, args.seed)
    print(
        f"\ncount engine vs bare numpy loop, {replicates} replicates x {DAYS} days, "
        f"best of {repeats} (populations interleaved):"
    )
    runs: dict[int, list[float]] = {n: [] for n in count_sizes}
    bare: dict[int, list[float]] = {n: [] for n in count_sizes}
    own: list[float] = []
    for _ in range(repeats):
        for n in count_sizes:
            runs[n].append(run_counts(funnel, n, replicates, args.seed)[0])
            bare[n].append(run_bare(funnel, n, replicates, args.seed))
        own.append(run_counts(funnel, 10**6, replicates, args.seed, per_replicate=True)[0])
    count_s = {n: min(t) / replicates for n, t in runs.items()}
    bare_s = {n: min(t) / replicates for n, t in bare.items()}
    print(
        f"  {'population':>13}  {'engine s':>9}  {'bare s':>9}  {'engine/bare':>11}  "
        f"{'engine ms/rep':>13}"
    )
    for n in count_sizes:
        print(
            f"  {n:>13,}  {min(runs[n]):9.3f}  {min(bare[n]):9.3f}  "
            f"{min(runs[n]) / min(bare[n]):11.2f}  {count_s[n] * 1e3:13.3f}"
        )
    flat = count_s[count_sizes[-1]] / count_s[count_sizes[0]]
    flat_bare = bare_s[count_sizes[-1]] / bare_s[count_sizes[0]]
    print(f"  flatness 1e9 / 1e3: engine {flat:.3f}, bare loop {flat_bare:.3f}")
    print(
        f"  one set of rates per replicate (N = 1e6): {min(own):.3f} s, "
        f"{min(own) / min(runs[10**6]):.2f} x shared rates"
    )

    print(f"\nnaive per-customer simulation, {DAYS} days, best of {naive_reps} replicates:")
    naive_s: dict[int, float] = {}
    for n in naive_sizes:
        naive_s[n] = min(run_naive(p, n, naive_reps, rng)[0])
        print(
            f"  N = {n:>13,}  {naive_s[n]:10.4f} s/replicate  "
            f"{naive_s[n] / n * 1e9:8.1f} ns/customer-replicate  "
            f"{naive_s[n] / (n * DAYS) * 1e9:6.2f} ns/customer-day"
        )
    largest = naive_sizes[-1]
    per_customer = naive_s[largest] / largest  # linear model from the largest measured size

    print(
        "\nper replicate (365 days); naive extrapolated linearly from "
        f"N = {largest:,} where not measured"
    )
    print(
        f"  {'population':>13}  {'count s/rep':>12}  {'naive s/rep':>12}  {'':12}  "
        f"{'naive/count':>12}"
    )
    for n in count_sizes:
        measured = n in naive_s
        naive = naive_s[n] if measured else per_customer * n
        tag = "measured" if measured else "extrapolated"
        print(
            f"  {n:>13,}  {count_s[n]:12.5f}  {naive:12.4g}  {tag:12}  {naive / count_s[n]:12.3g}"
        )
    print(f"  {'flatness (count engine, 1e9 / 1e3)':>41}: {flat:.3f}")

    check_n = 10**4
    init = np.zeros(funnel.n_stages)
    init[0] = check_n
    exact = init @ np.linalg.matrix_power(p, DAYS)
    _, count_mean = run_counts(funnel, check_n, replicates, args.seed + 1)
    check_reps = 4 * naive_reps
    _, naive_mean = run_naive(p, check_n, check_reps, rng)
    print(
        f"\nsanity check at N = {check_n:,}, mean last-day occupancy vs initial @ P^{DAYS} "
        f"(counts: {replicates} replicates, naive: {check_reps})"
    )
    print("  " + "  ".join(f"{s:>8}" for s in funnel.stages))
    for label, row in (("exact", exact), ("counts", count_mean), ("naive", naive_mean)):
        print("  " + "  ".join(f"{v:8.1f}" for v in row) + f"   {label}")
    for label, row, reps in (("counts", count_mean, replicates), ("naive", naive_mean, check_reps)):
        keep = exact >= 0.005 * check_n
        noise = float(np.max(np.sqrt((1 - exact[keep] / check_n) / (reps * exact[keep]))))
        print(
            f"  {label:>6}: max relative diff {max_rel_diff(row, exact):.4f} "
            f"(stages with >= 0.5% share; 1-sigma noise up to {noise:.4f})"
        )


if __name__ == "__main__":
    main()
