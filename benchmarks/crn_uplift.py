"""How much common random numbers narrow a paired uplift, three ways, on the holiday plan.

For every variant of ``scenarios/bike_shop_holiday.yaml`` the script prints the 5–95%
width and the standard deviation of the uplift in conversions over the baseline,
replicate by replicate, with

* **per-slot** streams: the count engine (every event slot of every compartment, at
  every step, draws from its own counter-based sub-stream of the replicate's key);
* **per-step** streams: the engine before per-slot streams, reproduced here — one numpy
  Philox stream per replicate, repositioned at each step (one lane for arrivals, one for
  moves), one multinomial call over all compartments in order, so a change in one
  compartment's draw shifts the numbers of every compartment after it;
* **independent** streams: the count engine with a separate family of keys per plan
  (``common_random_numbers: false``).

Run::

    python benchmarks/crn_uplift.py                 # 200 replicates
    python benchmarks/crn_uplift.py --replicates 50 # quicker
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from funnelsim.dynamics import CompiledModel
from funnelsim.engines.counts import CountEngine, replicate_keys
from funnelsim.scenario import load_scenario
from funnelsim.scenario.runner import compile_scenario, plans

HOLIDAY = Path(__file__).resolve().parents[1] / "scenarios" / "bike_shop_holiday.yaml"


def per_step_conversions(model: CompiledModel, replicates: int, seed: int) -> np.ndarray:
    """Entries into the goal per replicate, drawn the way the engine did before
    per-slot streams (numpy Philox repositioned per step; one multinomial per step)."""
    bits = np.random.Philox(key=0)
    rng = np.random.Generator(bits)
    template = bits.state
    goal = model.funnel.index(model.funnel.goal)
    c_n, m = model.dest.shape
    valid = model.dest.ravel() >= 0
    dest = model.dest.ravel()[valid]
    into_goal = (model.slot_edge.ravel() >= 0) & (model.stage_of[model.dest.ravel()] == goal)
    out = np.zeros(replicates)

    def at(key: np.ndarray, step: int, lane: int) -> np.random.Generator:
        state = dict(template)
        state["state"] = {"counter": np.array([0, lane, step, 0], dtype=np.uint64), "key": key}
        state["buffer_pos"] = 4
        bits.state = state  # type: ignore[assignment]
        return rng

    for r, key in enumerate(replicate_keys(seed, replicates)):
        state = np.rint(model.initial).astype(np.int64)
        unaware = model.unaware_at_start()
        for step in range(model.n_steps):
            lam = model.arrival_intensity(step, state)
            new = np.zeros(model.n_cells, dtype=np.int64)
            if lam.any():
                g = at(key, step, 0)
                if model.market_size is None:
                    new = g.poisson(lam * model.dt)
                elif unaware > 0:
                    total = lam.sum()
                    n = g.binomial(int(unaware), -np.expm1(-total / model.market_size * model.dt))
                    new = g.multinomial(n, lam / total)
                    unaware -= n
            draw = at(key, step, 1).multinomial(state, model.probs_at(step))
            moved = draw[:, :-1].reshape(-1)
            out[r] += moved[into_goal].sum()
            state = draw[:, -1] + np.bincount(dest, weights=moved[valid], minlength=c_n).astype(
                np.int64
            )
            state[model.arrival_comp] += new
    return out


def engine_conversions(model: CompiledModel, replicates: int, seed: int, stream: int) -> np.ndarray:
    """Entries into the goal per replicate from the count engine."""
    raw = CountEngine().run(model, replicates, seed, stream=stream)
    goal = model.funnel.index(model.funnel.goal)
    return raw.flows[:, :, :, goal].sum(axis=(1, 2)).astype(float)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=200)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    scenario = load_scenario(HOLIDAY)
    models = {name: compile_scenario(plan) for name, plan in plans(scenario).items()}
    ways = {
        "per-slot": lambda m, k: engine_conversions(m, args.replicates, args.seed, 0),
        "per-step": lambda m, k: per_step_conversions(m, args.replicates, args.seed),
        "independent": lambda m, k: engine_conversions(m, args.replicates, args.seed, k),
    }
    print(
        f"{HOLIDAY.name}: uplift in conversions over the baseline, {args.replicates} "
        f"replicates, seed {args.seed}"
    )
    print(f"  {'streams':<12} {'variant':<14} {'mean':>8} {'sd':>8} {'5-95% width':>12}")
    widths: dict[str, list[float]] = {}
    for way, simulate in ways.items():
        t0 = time.perf_counter()
        conv = {name: simulate(model, k) for k, (name, model) in enumerate(models.items())}
        base = conv.pop("baseline")
        for name, values in conv.items():
            uplift = values - base
            lo, hi = np.quantile(uplift, [0.05, 0.95])
            widths.setdefault(way, []).append(hi - lo)
            print(
                f"  {way:<12} {name:<14} {uplift.mean():8.1f} {uplift.std(ddof=1):8.1f} "
                f"{hi - lo:12.1f}"
            )
        print(f"  {'':<12} ({time.perf_counter() - t0:.1f} s)")
    slot, step, indep = (np.array(widths[w]) for w in ways)
    print("\nwidth ratios by variant (smaller is tighter):")
    print("  per-step / per-slot:    " + "  ".join(f"{x:5.2f}" for x in step / slot))
    print("  independent / per-slot: " + "  ".join(f"{x:5.2f}" for x in indep / slot))


if __name__ == "__main__":
    main()
