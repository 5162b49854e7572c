"""Campaign plans: the baseline and its variants, checked and resolved.

A variant is a patch of the baseline. ``campaigns`` entries add a campaign (new name),
alter one (only the keys given change) or remove it (``name: null``); ``arrivals``,
``population`` and ``economics`` keys replace the baseline's. :func:`variant_raw` applies
a patch to the raw scenario mapping; :func:`plan_problems` reports what is wrong with
every plan (each problem located in the file, under the variant when the patch caused
it); :func:`resolve_campaigns` turns a validated plan into
:class:`~funnelsim.campaigns.Campaign` objects on the horizon's days.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from funnelsim.campaigns import Campaign, spread_spend
from funnelsim.data.spend import read_spend_column
from funnelsim.dynamics import REFERRAL
from funnelsim.errors import Problem, ScenarioError, did_you_mean
from funnelsim.funnel import LOST
from funnelsim.scenario.schema import (
    HINT,
    Arrivals,
    CampaignSpec,
    Economics,
    Population,
    Scenario,
)

__all__ = ["variant_raw", "plan_problems", "resolve_campaigns", "horizon_days"]

_PATCHABLE: dict[str, type[BaseModel]] = {
    "arrivals": Arrivals,
    "population": Population,
    "economics": Economics,
}


def _mapping(value: Any) -> Mapping:
    return value if isinstance(value, Mapping) else {}


def variant_raw(raw: Mapping, name: str) -> dict:
    """The raw scenario mapping of variant ``name`` (the baseline with its patch applied)."""
    out = copy.deepcopy(dict(raw))
    patch = _mapping(_mapping(raw.get("variants")).get(name))
    baseline = dict(_mapping(out.get("baseline")))
    campaigns = {k: dict(_mapping(v)) for k, v in _mapping(baseline.get("campaigns")).items()}
    for cname, change in _mapping(patch.get("campaigns")).items():
        if change is None:
            campaigns.pop(cname, None)
        elif cname in campaigns:
            campaigns[cname] = {**campaigns[cname], **copy.deepcopy(dict(_mapping(change)))}
        else:
            campaigns[cname] = copy.deepcopy(change)
    for key in _PATCHABLE:
        if _mapping(patch.get(key)):
            out[key] = {**_mapping(out.get(key)), **copy.deepcopy(dict(patch[key]))}
    out["baseline"] = {"label": patch.get("label") or name,
                       "description": patch.get("description", ""), "campaigns": campaigns}
    out.pop("variants", None)
    return out


def _validation_problems(model: type[BaseModel], data: Any, where: tuple) -> list[Problem]:
    try:
        model.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            message, _, hint = err["msg"].removeprefix("Value error, ").partition(HINT)
            if err["type"] == "extra_forbidden":
                fields = list(model.model_fields) if len(err["loc"]) == 1 else []
                hint = did_you_mean(str(err["loc"][-1]), fields) if fields else hint
                message = f"unknown key {err['loc'][-1]!r}"
            elif err["type"] == "missing":
                message = f"required key {err['loc'][-1]!r} is missing"
            problems.append(Problem(where + tuple(err["loc"]), message, hint))
        return problems
    return []


def _patch_problems(raw: Mapping, name: str) -> list[Problem]:
    """Problems a variant's patch introduces (the baseline's own are reported once)."""
    patch = _mapping(_mapping(raw.get("variants")).get(name))
    baseline = _mapping(_mapping(raw.get("baseline")).get("campaigns"))
    merged = _mapping(variant_raw(raw, name)["baseline"]["campaigns"])
    out: list[Problem] = []
    for cname, change in _mapping(patch.get("campaigns")).items():
        where = ("variants", name, "campaigns", cname)
        if change is None:
            if cname not in baseline:
                out.append(Problem(where, f"removes campaign {cname!r}, which the baseline does "
                                   "not have", did_you_mean(str(cname), list(baseline))))
            continue
        problems = _validation_problems(CampaignSpec, merged[cname], where)
        if cname in baseline:  # keep only problems in keys the patch changed
            problems = [p for p in problems if len(p.path) > len(where)
                        and p.path[len(where)] in _mapping(change)]
        out += problems
    for key, model in _PATCHABLE.items():
        if _mapping(patch.get(key)):
            merged_value = variant_raw(raw, name)[key]
            problems = _validation_problems(model, merged_value, ("variants", name, key))
            out += [p for p in problems if len(p.path) > 3 and p.path[3] in patch[key]]
    return out


def horizon_days(raw: Mapping) -> tuple[dt.date, dt.date] | None:
    """First and last day of the horizon, if the horizon is valid."""
    try:
        horizon = Scenario.model_fields["horizon"].annotation.model_validate(raw.get("horizon"))
    except (ValidationError, AttributeError):
        return None
    days = int(horizon.periods * horizon.step_days)
    return horizon.start, horizon.start + dt.timedelta(days=days - 1)


def _campaign_reference_problems(raw: Mapping, campaigns: Mapping, where: tuple,
                                 base_dir: Path, label: str) -> list[Problem]:
    """Campaigns that target edges, channels or personas that do not exist, run outside
    the horizon, or read bad spend files."""
    funnel = _mapping(raw.get("funnel"))
    stages = [str(s) for s in _mapping(funnel.get("stages"))]
    edges: set[tuple[str, str]] = set()
    stage_tables = [_mapping(funnel.get("stages"))] + [
        _mapping(_mapping(seg).get("stages")) for seg in _mapping(raw.get("segments")).values()]
    for table in stage_tables:
        for src, spec in table.items():
            for form in ("next", "rates"):
                for dst, value in _mapping(_mapping(spec).get(form)).items():
                    if isinstance(value, int | float) and value > 0:
                        edges.add((str(src), str(dst)))
    arrivals = _mapping(raw.get("arrivals"))
    channels = list(_mapping(arrivals.get("channels"))) or (["direct"] if arrivals else [])
    refers = any(_mapping(spec).get("referrals_per_day") for table in stage_tables
                 for spec in table.values())
    channels += [REFERRAL] if refers else []
    segments = list(_mapping(raw.get("segments")))
    span = horizon_days(raw)
    out: list[Problem] = []
    for cname, spec in campaigns.items():
        try:
            campaign = CampaignSpec.model_validate(spec)
        except ValidationError:
            continue  # reported by the schema
        here = where + (cname,)
        for k, effect in enumerate(campaign.effects):
            if effect.edge is not None and stages:
                src, dst = effect.edge_pair()
                if (src, dst) not in edges:
                    known = sorted(f"{a} -> {b}" for a, b in edges)
                    bad = [s for s in (src, dst) if s not in stages and s != LOST]
                    hint = (did_you_mean(bad[0], stages) if bad else
                            f"declare the edge in the funnel first (a small rate is enough); "
                            f"{did_you_mean(effect.edge, known)}")
                    out.append(Problem(here + ("effects", k, "edge"),
                                       f"campaign {cname!r} targets edge {effect.edge!r}, which "
                                       "the funnel does not have", hint))
            if effect.arrivals is not None and effect.arrivals != "*" and \
                    effect.arrivals not in channels:
                out.append(Problem(here + ("effects", k, "arrivals"),
                                   f"unknown arrival channel {effect.arrivals!r}",
                                   did_you_mean(effect.arrivals, channels + ["*"])))
        for k, seg in enumerate(campaign.segments):
            if seg not in segments:
                out.append(Problem(here + ("segments", k), f"unknown segment {seg!r}",
                                   did_you_mean(seg, segments)))
        if span is not None:
            first, last = span
            start, end = campaign.start or first, campaign.end or last
            for key, day in (("start", start), ("end", end)):
                if not first <= day <= last:
                    out.append(Problem(here + (key,), f"{key} {day} is outside the horizon",
                                       f"the horizon runs from {first} to {last}"))
            if campaign.spend is not None and campaign.spend.csv is not None and \
                    first <= start <= end <= last:
                csv_path = Path(campaign.spend.csv)
                path = csv_path if csv_path.is_absolute() else base_dir / csv_path
                _, problems = read_spend_column(
                    path, campaign.spend.column or cname, start, end, here + ("spend",),
                    label=str(Path(label).parent / campaign.spend.csv))
                out += problems
    return out


def plan_problems(raw: Mapping, base_dir: Path, label: str) -> list[Problem]:
    """Every problem in the baseline plan and the variants (see module docstring)."""
    out: list[Problem] = []
    baseline = _mapping(_mapping(raw.get("baseline")).get("campaigns"))
    out += _campaign_reference_problems(raw, baseline, ("baseline", "campaigns"), base_dir, label)
    stages = [str(s) for s in _mapping(_mapping(raw.get("funnel")).get("stages"))]
    for sname, seg in _mapping(raw.get("segments")).items():
        for stage in _mapping(_mapping(seg).get("stages")):
            if stages and stage not in stages and stage != LOST:
                out.append(Problem(("segments", sname, "stages", stage),
                                   f"segment {sname!r} overrides unknown stage {stage!r}",
                                   did_you_mean(str(stage), stages)))
            for form in ("next", "rates"):
                for target in _mapping(_mapping(_mapping(seg).get("stages")).get(stage)).get(
                        form) or {}:
                    if stages and target not in stages and target != LOST:
                        out.append(Problem(("segments", sname, "stages", stage, form, target),
                                           f"unknown stage {target!r} in `{form}`",
                                           did_you_mean(str(target), stages)))
    for name in _mapping(raw.get("variants")):
        out += _patch_problems(raw, name)
        merged = variant_raw(raw, name)
        patch = _mapping(_mapping(_mapping(raw.get("variants")).get(name)).get("campaigns"))
        changed = {k: v for k, v in _mapping(merged["baseline"]["campaigns"]).items() if k in patch}
        out += _campaign_reference_problems(merged, changed, ("variants", name, "campaigns"),
                                            base_dir, label)
    return out


def resolve_campaigns(scenario: Scenario, base_dir: Path | None) -> list[Campaign]:
    """The baseline plan's campaigns on the horizon's days (day 0 = horizon start)."""
    start = scenario.horizon.start
    n_days = int(scenario.horizon.periods * scenario.horizon.step_days)
    out = []
    for name, spec in scenario.baseline.campaigns.items():
        first = ((spec.start or start) - start).days
        last = ((spec.end or start + dt.timedelta(days=n_days - 1)) - start).days
        spend = None
        if spec.spend is not None:
            if spec.spend.csv is not None:
                path = Path(spec.spend.csv)
                path = path if path.is_absolute() or base_dir is None else base_dir / path
                window, problems = read_spend_column(
                    path, spec.spend.column or name, start + dt.timedelta(days=first),
                    start + dt.timedelta(days=last), ("baseline", "campaigns", name, "spend"))
                if problems or window is None:
                    raise ScenarioError(problems, str(path))
                spend = spread_spend(n_days, first, last, per_day=0.0)
                spend[first:last + 1] = window
            else:
                spend = spread_spend(n_days, first, last, total=spec.spend.total,
                                     per_day=spec.spend.per_day)
        edge_lifts = {e.edge_pair(): e.lift for e in spec.effects if e.edge is not None}
        arrival_lifts = {e.arrivals: e.lift for e in spec.effects if e.arrivals is not None}
        out.append(Campaign(
            name=name, start=first, end=last, n_days=n_days, spend=spend,
            carryover=spec.carryover, half_saturation=spec.half_saturation, shape=spec.shape,
            edge_lifts=edge_lifts, arrival_lifts=arrival_lifts, segments=tuple(spec.segments),
            cost_per_day=spec.cost_per_day, fixed_cost=spec.fixed_cost,
        ))
    return out
