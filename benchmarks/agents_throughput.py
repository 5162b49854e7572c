"""Agent-engine throughput: events per second against a bare simpy loop, in the same run.

Journey: the five-stage bike-shop funnel (Markov, exponential dwell)::

    awareness  14 d -> interest .35, lost .65
    interest   10 d -> desire .40, awareness .20, lost .40
    desire      7 d -> conversion .30, interest .30, lost .40
    conversion  2 d -> advocacy .30, lost .70
    advocacy   60 d -> lost

with 20,000 people in ``awareness`` at day 0 and Poisson arrivals into ``awareness`` at
300 a day, over 90 days (``--quick``: 5,000 people, 100 a day, 60 days).

**One event** = one stage transition (a move along an edge, moves into ``lost``
included) or one customer start (an initial customer or an arrival), counted over
``[0, horizon)``. For the engine: ``raw.flows.sum() + raw.arrivals.sum() +
raw.initial.sum()``; for the bare loop the same things are counted as they happen.

Contenders, one replicate per timing, interleaved, best of ``--repeats``:

* ``bare simpy``: one ``simpy.Environment``; one process per customer doing
  ``yield env.timeout(exp * mean dwell)`` and then choosing the next stage by bisecting
  the cumulative routing row, until ``lost``; one arrival process with exponential gaps.
  It draws from the engine's own buffered generator (``_Draws``: blocks of 4096 numpy
  draws popped from a list), so the comparison measures the engine's bookkeeping
  (occupancy, flows, entries, period recorder, event log), not the cost of RNG calls.
* ``engine``: ``get_engine("agents").run(model, 1, seed)`` on the model compiled with
  ``expand_phases=False`` (compilation is outside the timing).
* ``engine+log``: the same with ``record=True`` (event log kept).

Each timing starts after an untimed ``gc.collect()``: a finished run leaves its
environment as cyclic garbage that would otherwise be charged to the next contender.

Repeat i uses seed ``seed + i`` for all three (same Philox key from
``replicate_keys``), so the transition totals of bare loop and engine are compared
over the repeats with each other (paired by seed: both pop the same buffered streams, so
they are positively correlated) and with the exact expectation (from the matrix
exponential of the mean-field equations). The acceptance target is engine/bare >= 0.5.

Run::

    python benchmarks/agents_throughput.py            # full run (~1-2 minutes)
    python benchmarks/agents_throughput.py --quick    # smoke test (a few seconds)
"""

from __future__ import annotations

import argparse
import bisect
import gc
import time

import numpy as np
import simpy
from scipy.linalg import expm

from funnelsim.dynamics import compile_model
from funnelsim.engines import get_engine
from funnelsim.engines.agents import _Draws
from funnelsim.engines.counts import replicate_keys
from funnelsim.funnel import LOST, Funnel

ENTRY = "awareness"
DWELL = {"awareness": 14.0, "interest": 10.0, "desire": 7.0, "conversion": 2.0, "advocacy": 60.0}
NEXT = {
    "awareness": {"interest": 0.35, "lost": 0.65},
    "interest": {"desire": 0.40, "awareness": 0.20, "lost": 0.40},
    "desire": {"conversion": 0.30, "interest": 0.30, "lost": 0.40},
    "conversion": {"advocacy": 0.30, "lost": 0.70},
    "advocacy": {"lost": 1.0},
}


def journey() -> Funnel:
    """The bike-shop journey (5 stages + lost, goal conversion)."""
    return Funnel.from_routing(DWELL, NEXT, goal="conversion")


def bare_simpy(
    funnel: Funnel, population: int, per_day: float, days: float, seed: int
) -> tuple[int, int]:
    """The minimal simpy loop; returns (starts, transitions) within ``[0, days)``."""
    draws = _Draws(np.random.Generator(np.random.Philox(key=replicate_keys(seed, 1)[0])))
    exp, uniform = draws.exp, draws.uniform
    lost, entry = funnel.index(LOST), funnel.index(ENTRY)
    mean, targets, cum = [], [], []
    for row in funnel.rates:
        nz = np.nonzero(row)[0]
        mean.append(1.0 / row.sum() if row.sum() > 0 else 0.0)
        targets.append(nz.tolist())
        cum.append((np.cumsum(row[nz]) / row.sum()).tolist())
    env = simpy.Environment()
    count = [0, 0]  # starts, transitions

    def customer(stage: int):
        while stage != lost:
            yield env.timeout(exp() * mean[stage])
            stage = targets[stage][bisect.bisect_left(cum[stage], uniform())]
            count[1] += 1

    def source():
        gap = 1.0 / per_day
        while True:
            yield env.timeout(exp() * gap)
            env.process(customer(entry))
            count[0] += 1

    for _ in range(population):
        env.process(customer(entry))
    count[0] += population
    env.process(source())
    env.run(until=days)
    return count[0], count[1]


def expected_transitions(funnel: Funnel, population: int, per_day: float, days: float) -> float:
    """Exact mean number of transitions in [0, days) (mean-field ODE, matrix exponential)."""
    s = funnel.n_stages
    total = funnel.rates.sum(axis=1)
    a = np.zeros((s + 2, s + 2))
    a[:s, :s] = funnel.rates - np.diag(total)
    a[s, funnel.index(ENTRY)] = per_day  # the constant "1" feeds arrivals
    a[:s, s + 1] = total  # accumulates expected moves
    x0 = np.zeros(s + 2)
    x0[funnel.index(ENTRY)] = population
    x0[s] = 1.0
    return float((x0 @ expm(a * days))[s + 1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5,000 people, 100/day, 60 days")
    parser.add_argument("--seed", type=int, default=20260101)
    parser.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="interleaved timings per contender, best kept (default 30, quick 3)",
    )
    args = parser.parse_args()

    population, per_day, days = (5_000, 100.0, 60) if args.quick else (20_000, 300.0, 90)
    repeats = max(2, args.repeats or (3 if args.quick else 30))
    funnel = journey()
    model = compile_model(
        funnel,
        start="2026-01-01",
        periods=days,
        initial={ENTRY: float(population)},
        arrivals_per_day=per_day,
        expand_phases=False,
    )
    plain, logged = get_engine("agents"), get_engine("agents", record=True)

    def run_engine(engine):
        def go(seed: int) -> tuple[int, int]:  # (starts, transitions), as bare_simpy
            raw = engine.run(model, 1, seed)
            return int(raw.initial.sum() + raw.arrivals.sum()), int(raw.flows.sum())

        return go

    contenders = {
        "bare simpy": lambda seed: bare_simpy(funnel, population, per_day, days, seed),
        "engine": run_engine(plain),
        "engine+log": run_engine(logged),
    }
    print(
        f"journey: bike shop, {funnel.n_stages - 1} stages + lost, {len(funnel.edges)} edges; "
        f"{population:,} initial in {ENTRY}, Poisson arrivals {per_day:g}/day, {days} days; "
        f"seed {args.seed}"
    )
    print(
        "event = one stage transition (edge move, into lost included) "
        "or one customer start (initial or arrival)"
    )

    for fn in contenders.values():
        fn(args.seed - 1)  # warm-up (imports, caches, allocator)

    seconds: dict[str, list[float]] = {name: [] for name in contenders}
    counts: dict[str, list[tuple[int, int]]] = {name: [] for name in contenders}
    for i in range(repeats):
        for name, fn in contenders.items():
            gc.collect()  # the previous run's environment is cyclic garbage: clear it untimed
            t0 = time.perf_counter()
            got = fn(args.seed + i)
            seconds[name].append(time.perf_counter() - t0)
            counts[name].append(got)

    print(
        f"\none replicate per timing, best of {repeats} (contenders interleaved, "
        "repeat i uses seed + i):"
    )
    print(
        f"  {'contender':<12} {'events':>10} {'starts':>8} {'moves':>9} {'seconds':>9} "
        f"{'worst s':>8} {'events/s':>10} {'vs bare':>8}"
    )
    rate: dict[str, float] = {}
    for name in contenders:
        per = [(a + m) / t for (a, m), t in zip(counts[name], seconds[name])]
        best = int(np.argmax(per))
        rate[name] = per[best]
        a, m = counts[name][best]
        print(
            f"  {name:<12} {a + m:>10,} {a:>8,} {m:>9,} {seconds[name][best]:9.3f} "
            f"{max(seconds[name]):8.3f} {rate[name]:10,.0f} "
            f"{rate[name] / rate['bare simpy']:8.3f}"
        )
    for name in ("engine", "engine+log"):
        ratio = rate[name] / rate["bare simpy"]
        verdict = "meets" if ratio >= 0.5 else "MISSES"
        print(f"  ratio {name}/bare = {ratio:.3f}  ({verdict} the >= 0.5 target)")

    exact = expected_transitions(funnel, population, per_day, days)
    starts_exact = population + per_day * days
    print(
        f"\ntransition totals over the {repeats} seeds (same work check; "
        f"exact mean {exact:,.0f} moves, {starts_exact:,.0f} starts):"
    )
    moves = {name: np.array([m for _, m in counts[name]], float) for name in contenders}
    for name, m in moves.items():
        sd = m.std(ddof=1)
        z = (m.mean() - exact) / (sd / np.sqrt(repeats))
        print(f"  {name:<12} mean {m.mean():>10,.1f}  sd {sd:7.1f}  vs exact {z:+6.2f} se")
    d = moves["engine"] - moves["bare simpy"]  # paired: same key, partly shared draws
    z = d.mean() / (d.std(ddof=1) / np.sqrt(repeats))
    print(
        f"  engine - bare: {d.mean():+,.1f} moves per run, paired over seeds ({z:+.2f} se; "
        f"{'within' if abs(z) < 3 else 'OUTSIDE'} sampling noise)"
    )
    if any(counts["engine"][i] != counts["engine+log"][i] for i in range(repeats)):
        print("  WARNING: engine and engine+log disagree on the same seed")


if __name__ == "__main__":
    main()
