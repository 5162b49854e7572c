"""Run a validated scenario through an engine and label the result."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from funnelsim import __version__
from funnelsim.dynamics import CompiledModel, compile_model
from funnelsim.engines import get_engine
from funnelsim.funnel import Funnel
from funnelsim.results import SimulationResult
from funnelsim.scenario.schema import FunnelSpec, Scenario

__all__ = ["build_funnel", "compile_scenario", "run", "resolved_scenario", "fresh_seed"]

BASELINE = "baseline"


def build_funnel(spec: FunnelSpec) -> Funnel:
    """The :class:`~funnelsim.funnel.Funnel` a validated funnel spec describes."""
    rates = {name: stage.rate_table() for name, stage in spec.stages.items()}
    return Funnel.from_rates(rates, goal=spec.goal, stages=list(spec.stages),
                             entry=spec.entry or "", name=spec.name)


def compile_scenario(scenario: Scenario) -> CompiledModel:
    """Resolve a scenario into engine arrays."""
    funnel = build_funnel(scenario.funnel)
    arrivals = scenario.arrivals
    return compile_model(
        funnel,
        start=str(scenario.horizon.start),
        periods=scenario.horizon.periods,
        step_days=scenario.horizon.step_days,
        initial=dict(scenario.population.initial),
        arrivals_per_day=arrivals.per_day if arrivals else 0.0,
        channels=dict(arrivals.channels) if arrivals and arrivals.channels else None,
        arrival_stage=arrivals.stage if arrivals else None,
        dt=scenario.horizon.dt_days,
    )


def fresh_seed() -> int:
    """A new random seed (recorded in the outputs so the run can be repeated)."""
    return int(np.random.SeedSequence().generate_state(1, np.uint32)[0])


def run(
    scenario: Scenario,
    *,
    replicates: int | None = None,
    seed: int | None = None,
    engine: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> SimulationResult:
    """Simulate a scenario; arguments override the file's ``replicates``, ``seed``, ``engine``.

    The result's attrs record the seed, engine, replicates and funnelsim version.
    """
    replicates = replicates or scenario.replicates
    seed = seed if seed is not None else scenario.seed
    seed = fresh_seed() if seed is None else seed
    engine_name = engine or scenario.engine
    model = compile_scenario(scenario)
    raw = get_engine(engine_name).run(model, replicates, seed, progress)
    attrs = {
        "title": scenario.name,
        "engine": engine_name,
        "seed": seed,
        "replicates": replicates,
        "funnelsim_version": __version__,
    }
    return SimulationResult.from_runs({BASELINE: raw}, model, attrs)


def resolved_scenario(scenario: Scenario, result: SimulationResult) -> dict:
    """Exactly what ran: the scenario with defaults filled in, the funnel in rates form,
    and the seed, engine, replicates, clock step and version actually used."""
    data = scenario.model_dump(mode="json", exclude_none=True)
    attrs = result.dataset.attrs
    data["seed"] = int(attrs["seed"])
    data["replicates"] = int(attrs["replicates"])
    data["engine"] = str(attrs["engine"])
    data["horizon"]["dt_days"] = float(attrs["dt_days"])
    data["funnelsim_version"] = __version__
    return data
