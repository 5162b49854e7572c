"""Forecasts from a fit: replicate r of a scenario runs with posterior draw r.

A scenario that says ``fit: FIT.nc`` takes its journey from the fit. Each replicate uses
one posterior draw of every rate (and of the lift of each campaign whose effect was
fitted, matched by campaign name and target), so the spread of a forecast includes what
the history leaves uncertain, not only chance. Draws are used in order and cycle when
there are more replicates than draws.

A fit whose repeat stage was fitted customer by customer (``--heterogeneity``) runs
that stage as rate classes (:mod:`funnelsim.inference.rate_classes`): people who
reach it join a class with the population's probability, so frequent and occasional
customers each keep their own pace. With ``population: {from_fit: FIT.nc}`` each
replicate starts from one draw of the nowcast: who is still in each stage and, in the
repeat stage, each known customer's class given their own history.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from funnelsim.campaigns import Campaign
from funnelsim.dynamics import (
    EXISTING,
    CompiledModel,
    RateClasses,
    Segment,
    _split,
    choose_dt,
    compile_model,
)
from funnelsim.errors import EngineMismatch
from funnelsim.funnel import LOST, Funnel
from funnelsim.inference.rate_classes import ClassDraws, repeat_classes

__all__ = ["fitted_model", "start_draws"]

#: posterior draws of a repeat stage's rate classes (replicates cycle through them)
_CLASS_DRAWS = 200


def fitted_model(
    scenario: Any, replicates: int, engine: str, seed: int | None = None
) -> CompiledModel:
    """The compiled plan with one set of rates per replicate, drawn from the scenario's fit
    (and, with ``population: {from_fit}``, one start per replicate; ``seed`` draws it).

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

    horizon = inputs["periods"] * inputs.get("step_days", 1.0)
    classes = _classes(fit, scenario._start, replicates, horizon)
    if inputs.get("dt") is None:  # one clock for every draw: fine enough for the fastest
        top = rates.max(axis=0).max(axis=0)
        if classes is not None:  # a row whose total is the fastest class's
            ci = fit.stages.index(classes.stage)
            top[ci] = 0.0
            top[ci, ci] = max(
                classes.rates(d, fit.stages).sum(axis=1).max() for d in range(classes.n_draws)
            )
        fastest = Funnel(fit.stages, top, goal=funnel0.goal)
        inputs["dt"] = choose_dt([fastest], inputs.get("step_days", 1.0))

    def classes_of(r: int) -> RateClasses | None:
        if classes is None:
            return None
        d = r % classes.n_draws
        return RateClasses(classes.stage, classes.weight[d], classes.rates(d, fit.stages))

    base = compile_model(**inputs, classes=classes_of(0))
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
        slot[r] = compile_model(**draw, classes=classes_of(r)).slot_rates
    model = base.with_replicate_rates(slot)
    if scenario._start is not None and EXISTING in model.channels:
        stochastic = engine == "counts"
        start = start_draws(model, scenario._start, classes, replicates, stochastic, seed)
        model = model.with_replicate_initial(start)
    return model


def _classes(fit: Any, start: Any, replicates: int, horizon: float) -> ClassDraws | None:
    """The rate classes of the fit's customer-by-customer repeat stage (None without
    one); known customers' classes come from the ``from_fit`` fit's histories."""
    info = fit.repeat_info
    if info.get("heterogeneity", "none") == "none" or info.get("stage") not in fit.stages:
        return None
    model = fit.repeat_model(max_draws=min(replicates, _CLASS_DRAWS))  # cycled over replicates
    source = start[0] if start is not None else None
    h = source.repeat_histories() if source is not None else None
    if h is not None and h.stage != info["stage"]:
        h = None
    return repeat_classes(model, info["stage"], h, horizon)


def start_draws(
    model: CompiledModel,
    start: tuple[Any, Any],
    classes: ClassDraws | None,
    replicates: int,
    stochastic: bool,
    seed: int | None,
) -> np.ndarray:
    """People at the start ``(R, C)``, one nowcast draw per replicate (cycling): who is
    still in each stage; in a stage with rate classes, each known customer's class
    drawn from their own posterior (``stochastic``) or its expected split."""
    _, now = start
    occ = now.occupancy_draws
    rng = np.random.default_rng(np.random.SeedSequence([0 if seed is None else seed, 11]))
    shares = model.segment_shares if model.segment_shares is not None else np.ones(1)
    shares = shares / shares.sum()
    counts = np.zeros((replicates, len(now.stages), model.n_compartments))
    for i, stage in enumerate(now.stages):
        if stage == LOST or stage not in model.stages:
            continue
        comps = model.compartments(stage, EXISTING)  # (G, K)
        if classes is not None and stage == classes.stage:
            by_class = _class_counts(
                classes, occ[:, i], classes.n_classes, replicates, rng, stochastic
            )
        else:
            by_class = np.zeros((replicates, comps.shape[1]))
            by_class[:, 0] = occ[np.arange(replicates) % len(occ), i]
        for r in range(replicates):
            for k, count in enumerate(by_class[r]):
                split = _split(float(count), shares) if stochastic else count * shares
                counts[r, i, comps[:, k]] += split
    return counts.sum(axis=1)


def _class_counts(
    classes: ClassDraws,
    totals: np.ndarray,
    k_n: int,
    replicates: int,
    rng: np.random.Generator,
    stochastic: bool,
) -> np.ndarray:
    """People in each rate class at the start ``(R, K)``: known customers by their own
    posterior classes (a draw of who is where, or its expectation), replicate r with
    the classes' draw ``r % D``; without their histories, the nowcast's ``totals``
    (one per nowcast draw, cycled) split by the population's weights."""
    out = np.zeros((replicates, k_n))
    for d in range(min(classes.n_draws, replicates)):
        reps = np.arange(d, replicates, classes.n_draws)
        if classes.membership is None:
            w = classes.weight[d] / classes.weight[d].sum()
            for r in reps:
                total = float(totals[r % len(totals)])
                out[r] = rng.multinomial(int(round(total)), w) if stochastic else total * w
            continue
        member = classes.member(d)  # (n, K): P(class k and still there)
        if not stochastic:
            out[reps] = member.sum(axis=0)
            continue
        cum = member.cumsum(axis=1)
        for r in reps:
            k = (cum < rng.random(len(member))[:, None]).sum(axis=1)  # K: no longer there
            out[r] = np.bincount(k, minlength=k_n + 1)[:k_n]
    return out


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
