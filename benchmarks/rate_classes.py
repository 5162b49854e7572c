"""What rate classes cost the engines, and how close they keep the exact expectation.

A scenario with ``fit:`` of a customer-by-customer fit (``--heterogeneity gamma``) and
``population: {from_fit}`` runs the repeat stage as 40 rate classes (5 repeat rates × 8
drop-out rates). This script runs the same scenario three ways, in the same process:

* rate classes (the default), counts and expected engines;
* one rate for everyone in the stage (the journey fit's), the same engines;

and prints the time of each run side by side (classes ÷ one rate), and the known
customers' repeats over the horizon against the nowcast's exact per-customer
expectation (Pareto/NBD) — the discretisation and the engines' clock are the only
differences.

    PYTHONPATH=$PWD python benchmarks/rate_classes.py --fit fits/repeat.nc
    PYTHONPATH=$PWD python benchmarks/rate_classes.py            # fits the shipped example

Measured (the shipped example, 13 weeks, 1,000 replicates, 2 busy cores): see the
README's section on customers who differ.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

from funnelsim.engines.counts import CountEngine
from funnelsim.engines.expected import ExpectedEngine
from funnelsim.inference import forecast
from funnelsim.inference.fitted import FittedFunnel
from funnelsim.scenario import load_scenario

EXAMPLE = Path(__file__).resolve().parents[1] / "scenarios" / "repeat" / "purchases.csv"


def _fit(path: Path | None, folder: Path) -> Path:
    if path is not None:
        return path
    from funnelsim.inference.api import fit_history

    print("fitting the shipped repeat example (--heterogeneity gamma) …", flush=True)
    fit = fit_history(EXAMPLE, heterogeneity="gamma", seed=1, draws=600, tune=600, chains=2)
    out = folder / "repeat.nc"
    fit.idata.to_netcdf(str(out))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fit", type=Path, default=None, help="a fit with --heterogeneity")
    parser.add_argument("--weeks", type=int, default=13)
    parser.add_argument("--replicates", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        fit_path = _fit(args.fit, folder)
        fit = FittedFunnel.load(fit_path)
        end = pd.Timestamp(fit.data["end"])
        scenario_path = folder / "next.yaml"
        scenario_path.write_text(
            yaml.safe_dump(
                {
                    "name": "next weeks",
                    "fit": str(fit_path.resolve()),
                    "population": {"from_fit": str(fit_path.resolve())},
                    "horizon": {"start": str(end.date()), "periods": args.weeks, "step": "week"},
                }
            )
        )
        scenario = load_scenario(scenario_path)
        stage = fit.repeat_info["stage"]
        i = list(fit.stages).index(stage)
        days = 7.0 * args.weeks
        h = fit.repeat_histories()
        exact = fit.repeat_model(max_draws=400).expected_repeats(h, days).sum(axis=1).mean()
        print(f"\n{stage}: repeats by known customers over {days:g} days; nowcast's exact "
              f"expectation {exact:,.0f}")  # fmt: skip
        print(f"{'engine':10} {'model':12} {'seconds':>8} {'repeats':>9} {'vs exact':>9}")
        times: dict[tuple[str, str], float] = {}
        original = forecast._classes
        for label, classes in (("rate classes", original), ("one rate", lambda *a: None)):
            forecast._classes = classes  # type: ignore[assignment]
            try:
                for name, engine in (("counts", CountEngine()), ("expected", ExpectedEngine())):
                    t0 = time.perf_counter()
                    model = forecast.fitted_model(scenario, args.replicates, name, args.seed)
                    start = model.initial_by_replicate().copy()
                    start[:, model.stage_of != i] = 0.0  # the known buyers alone
                    raw = engine.run(model.with_replicate_initial(start), args.replicates,
                                     seed=args.seed)  # fmt: skip
                    seconds = time.perf_counter() - t0
                    times[name, label] = seconds
                    repeats = raw.flows[:, :, i, i].sum(axis=1).mean()
                    print(f"{name:10} {label:12} {seconds:8.1f} {repeats:9,.0f} "
                          f"{repeats / exact - 1:+9.1%}")  # fmt: skip
            finally:
                forecast._classes = original
        for name in ("counts", "expected"):
            ratio = times[name, "rate classes"] / times[name, "one rate"]
            print(f"{name}: rate classes take {ratio:.1f}× the time of one rate")


if __name__ == "__main__":
    main()
