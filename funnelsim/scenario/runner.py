"""Run a validated scenario — its baseline and every variant — and label the result.

Variants run with common random numbers: replicate r of every plan uses the same random
streams (``common_random_numbers: false`` gives each plan its own, to measure what
pairing buys).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from funnelsim import __version__
from funnelsim.dynamics import CompiledModel, Segment, compile_model
from funnelsim.engines import get_engine
from funnelsim.errors import EngineMismatch
from funnelsim.funnel import Capacity, Dwell, Funnel
from funnelsim.results import BASELINE, SimulationResult
from funnelsim.scenario.outputs import spend_specs
from funnelsim.scenario.plans import resolve_campaigns, variant_raw
from funnelsim.scenario.schema import FunnelSpec, Scenario, StageSpec

__all__ = [
    "build_funnel",
    "compile_scenario",
    "plans",
    "run",
    "resolved_scenario",
    "fresh_seed",
    "stage_values",
    "EngineMismatch",
]


def build_funnel(spec: FunnelSpec, overrides: dict[str, StageSpec] | None = None) -> Funnel:
    """The :class:`~funnelsim.funnel.Funnel` a validated funnel spec describes, with some
    stages replaced by ``overrides`` (a persona's own version of them)."""
    stages = {**spec.stages, **(overrides or {})}
    rates = {name: stage.rate_table() for name, stage in stages.items()}
    dwell = {
        name: Dwell(st.dwell.dist, st.dwell.shape)
        for name, st in stages.items()
        if st.dwell is not None
    }
    capacity = {
        name: Capacity(st.capacity.servers, st.capacity.service_days, st.capacity.patience_days)
        for name, st in spec.stages.items()
        if st.capacity is not None
    }
    return Funnel.from_rates(
        rates,
        goal=spec.goal,
        stages=list(spec.stages),
        entry=spec.entry or "",
        name=spec.name,
        dwell=dwell,
        capacity=capacity,
    )


def _referrals(spec: FunnelSpec, overrides: dict[str, StageSpec] | None = None) -> dict[str, float]:
    stages = {**spec.stages, **(overrides or {})}
    return {name: st.referrals_per_day for name, st in stages.items() if st.referrals_per_day > 0}


def compile_scenario(
    scenario: Scenario, base_dir: Path | None = None, engine: str | None = None
) -> CompiledModel:
    """Resolve one plan (the scenario's baseline campaigns) into engine arrays for
    ``engine`` (default: the scenario's). Raises
    :class:`~funnelsim.errors.EngineMismatch` for queues or dwell shapes the count
    engines cannot run."""
    return compile_model(**model_inputs(scenario, base_dir, engine))


def model_inputs(
    scenario: Scenario, base_dir: Path | None = None, engine: str | None = None
) -> dict[str, Any]:
    """The keyword arguments of :func:`~funnelsim.dynamics.compile_model` for one plan."""
    agents = (engine or scenario.engine) == "agents"
    base_dir = base_dir if base_dir is not None else _base_dir(scenario)
    funnel = build_funnel(scenario.funnel)
    segments = [
        Segment(
            name,
            seg.share,
            build_funnel(scenario.funnel, seg.stages),
            _referrals(scenario.funnel, seg.stages),
        )
        for name, seg in scenario.segments.items()
    ]
    arrivals = scenario.arrivals
    return dict(
        funnel=funnel,
        start=str(scenario.horizon.start),
        periods=scenario.horizon.periods,
        step_days=scenario.horizon.step_days,
        initial=dict(scenario.population.initial),
        arrivals_per_day=arrivals.per_day if arrivals else 0.0,
        channels=dict(arrivals.channels) if arrivals and arrivals.channels else None,
        arrival_stage=arrivals.stage if arrivals else None,
        dt=scenario.horizon.dt_days,
        segments=segments or None,
        campaigns=resolve_campaigns(scenario, base_dir),
        referrals_per_day=_referrals(scenario.funnel),
        market_size=scenario.population.market_size,
        expand_phases=not agents,
    )


def _base_dir(scenario: Scenario) -> Path | None:
    return scenario._source.parent if scenario._source is not None else None


def plans(scenario: Scenario) -> dict[str, Scenario]:
    """The baseline and each variant as a scenario of its own (variants patched in)."""
    out = {BASELINE: scenario}
    raw = scenario.model_dump(mode="json")
    for name in scenario.variants:
        variant = Scenario.model_validate(variant_raw(raw, name))
        variant._source = scenario._source
        variant._fit = scenario._fit
        variant._start = scenario._start
        out[name] = variant
    return out


def stage_values(scenario: Scenario) -> dict[str, float]:
    """Money per entry into each stage: ``value_per_conversion`` for the goal (and only
    that: each entry earns one value), ``value_per_entry`` for the other stages."""
    econ = scenario.economics
    values = {k: v for k, v in econ.value_per_entry.items() if k != scenario.funnel.goal}
    values[scenario.funnel.goal] = econ.value_per_conversion
    return values


def fresh_seed() -> int:
    """A new random seed (recorded in the outputs so the run can be repeated)."""
    return int(np.random.SeedSequence().generate_state(1, np.uint32)[0])


def run(
    scenario: Scenario,
    *,
    replicates: int | None = None,
    seed: int | None = None,
    engine: str | None = None,
    progress: Callable[[float], None] | None = None,
    plan_started: Callable[[int, str], None] | None = None,
    common_random_numbers: bool | None = None,
    workers: int = 1,
    record_journeys: bool = False,
    record_lost: bool = False,
) -> SimulationResult:
    """Simulate the baseline and every variant; arguments override the file's values.

    ``workers`` spreads replicates over threads (counts, expected) or processes
    (agents); results do not change. ``record_journeys`` keeps the agent engine's
    event logs in ``result.journeys``.
    ``progress`` is called with work done (replicates, or simulated days for agents),
    ``plan_started(k, name)`` before each plan runs (0 = the baseline).
    The result's attrs record the seed, engine, replicates and funnelsim version.
    """
    replicates = replicates or scenario.replicates
    seed = seed if seed is not None else scenario.seed
    seed = fresh_seed() if seed is None else seed
    crn = scenario.common_random_numbers if common_random_numbers is None else common_random_numbers
    engine_name = engine or scenario.engine
    options: dict[str, object] = {"workers": workers}
    if engine_name == "agents":
        options |= {"record": record_journeys, "record_lost": record_lost}
    runner = get_engine(engine_name, **options)
    runs, models, values, labels, journeys = {}, {}, {}, {}, {}
    for k, (name, plan) in enumerate(plans(scenario).items()):
        if plan_started is not None:
            plan_started(k, name)
        if plan._fit is not None:  # replicate r runs with posterior draw r
            from funnelsim.inference.forecast import fitted_model

            models[name] = fitted_model(plan, replicates, engine_name, seed)
        else:
            models[name] = compile_scenario(plan, engine=engine_name)
            if plan._start is not None and engine_name == "counts":
                from funnelsim.inference.forecast import start_draws

                start = start_draws(models[name], plan._start, None, replicates, True, seed)
                models[name] = models[name].with_replicate_initial(start)
        runs[name] = runner.run(models[name], replicates, seed, progress, stream=0 if crn else k)
        if record_journeys:
            from funnelsim.engines.agents import AgentEngine, journeys_frame

            assert isinstance(runner, AgentEngine)
            journeys[name] = journeys_frame(models[name], runner.last_events, replicates > 1)
        values[name] = stage_values(plan)
        labels[name] = plan.baseline.label
    attrs = {
        "title": scenario.name,
        "description": scenario.description.strip(),
        "currency": scenario.economics.currency,
        "engine": engine_name,
        "seed": seed,
        "replicates": replicates,
        "common_random_numbers": int(crn),
        "funnelsim_version": __version__,
    }
    result = SimulationResult.from_runs(runs, models, attrs, values, labels)
    result.journeys = journeys
    return result


def resolved_scenario(scenario: Scenario, result: SimulationResult) -> dict:
    """Exactly what ran, as a scenario mapping that runs again to the same numbers: the
    scenario with defaults filled in, the funnel inlined, the seed, replicates, engine
    and clock step actually used, and spend CSV paths made absolute (written out by
    :func:`~funnelsim.scenario.write_outputs`, they are copied beside it). The output
    folder (``outputs.dir``) is left out: it was where this file went."""
    data = scenario.model_dump(mode="json", exclude_none=True)
    attrs = result.dataset.attrs
    data["funnel"]["entry"] = attrs["entry"]
    data["seed"] = int(attrs["seed"])
    data["replicates"] = int(attrs["replicates"])
    data["engine"] = str(attrs["engine"])
    data["common_random_numbers"] = bool(attrs["common_random_numbers"])
    data["horizon"]["dt_days"] = float(attrs["dt_days"])
    data.get("outputs", {}).pop("dir", None)
    if data.get("fit") is not None:
        data.pop("funnel", None)  # it comes from the fit
    # in the schema's key order, so that running this file again writes it byte for byte
    funnel = data.pop("funnel", None)
    checked = Scenario.model_validate({**data, "funnel": funnel or scenario.funnel.model_dump()})
    data = checked.model_dump(mode="json", exclude_none=True)
    if funnel is None:
        data.pop("funnel")
    base = _base_dir(scenario)
    if data.get("fit") is not None and base is not None and not Path(data["fit"]).is_absolute():
        data["fit"] = str((base / data["fit"]).resolve())
    for spend in spend_specs(data):
        path = Path(spend["csv"])
        if not path.is_absolute() and base is not None:
            spend["csv"] = str((base / path).resolve())
    return data
