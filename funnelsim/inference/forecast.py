"""Forecasts from a fit: replicate r of a scenario runs with posterior draw r.

A scenario that says ``fit: FIT.nc`` takes its journey from the fit. Each replicate uses
one posterior draw of every rate (and of the lift of each campaign whose effect was
fitted, matched by campaign name and target), so the spread of a forecast includes what
the history leaves uncertain, not only chance. Draws are used in order and cycle when
there are more replicates than draws.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from funnelsim.campaigns import Campaign
from funnelsim.dynamics import CompiledModel, Segment, choose_dt, compile_model
from funnelsim.errors import EngineMismatch
from funnelsim.funnel import Funnel

__all__ = ["fitted_model"]


def fitted_model(scenario: Any, replicates: int, engine: str) -> CompiledModel:
    """The compiled plan with one set of rates per replicate, drawn from the scenario's fit.

    Raises :class:`~funnelsim.errors.EngineMismatch` for the agents engine (it runs one
    set of rates for all replicates).
    """
    from funnelsim.scenario.runner import model_inputs

    fit = scenario._fit
    if engine == "agents":
        raise EngineMismatch(
            "forecasts from a fit run one posterior draw per replicate: use the counts or "
            "expected engine (`--engine counts`)"
        )
    inputs = model_inputs(scenario, engine=engine)
    rates = fit.rate_draws(replicates)  # (R, G, S, S)
    lifts = fit.lift_draws(replicates)
    seg_index = {name: g for g, name in enumerate(fit.segments)}
    funnel0: Funnel = inputs["funnel"]

    def funnel_of(r: int, g: int) -> Funnel:
        return Funnel(fit.stages, rates[r, g], goal=funnel0.goal, entry=funnel0.entry)

    if inputs.get("dt") is None:  # one clock for every draw: fine enough for the fastest
        fastest = Funnel(fit.stages, rates.max(axis=0).max(axis=0), goal=funnel0.goal)
        inputs["dt"] = choose_dt([fastest], inputs.get("step_days", 1.0))
    base = compile_model(**inputs)
    slot = np.empty((replicates, *base.slot_rates.shape))
    segments: list[Segment] = list(inputs.get("segments") or [])
    campaigns: list[Campaign] = list(inputs.get("campaigns") or [])
    for r in range(replicates):
        draw = dict(inputs)
        draw["funnel"] = funnel_of(r, 0)
        if segments:
            draw["segments"] = [
                replace(seg, funnel=funnel_of(r, seg_index.get(seg.name, 0))) for seg in segments
            ]
        if lifts and campaigns:
            draw["campaigns"] = [_with_lifts(c, lifts, r) for c in campaigns]
        slot[r] = compile_model(**draw).slot_rates
    return base.with_replicate_rates(slot)


def _with_lifts(campaign: Campaign, lifts: dict[tuple[str, str], np.ndarray], r: int) -> Campaign:
    edges = {
        (a, b): float(lifts[campaign.name, f"{a} -> {b}"][r])
        if (campaign.name, f"{a} -> {b}") in lifts
        else lift
        for (a, b), lift in campaign.edge_lifts.items()
    }
    arrivals = {
        ch: float(lifts[campaign.name, f"arrivals:{ch}"][r])
        if (campaign.name, f"arrivals:{ch}") in lifts
        else lift
        for ch, lift in campaign.arrival_lifts.items()
    }
    return replace(campaign, edge_lifts=edges, arrival_lifts=arrivals)
