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
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError

from funnelsim.campaigns import Campaign, spread_spend
from funnelsim.data.spend import read_spend_column
from funnelsim.dynamics import REFERRAL
from funnelsim.errors import Problem, ScenarioError, did_you_mean
from funnelsim.funnel import LOST
from funnelsim.results import BASELINE
from funnelsim.scenario.checks import blocked, check_schema, reference_problems
from funnelsim.scenario.schema import CampaignSpec, EffectSpec, Horizon, Scenario, SpendSpec

__all__ = [
    "variant_raw",
    "plan_problems",
    "has_people",
    "resolve_campaigns",
    "campaign_of",
    "horizon_days",
]

_PATCHABLE = ("arrivals", "population", "economics")
_DATE: TypeAdapter[dt.date | None] = TypeAdapter(dt.date | None)
_Model = TypeVar("_Model", bound=BaseModel)


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
        elif isinstance(change, Mapping):  # anything else is reported by the schema
            campaigns[cname] = {**campaigns.get(cname, {}), **copy.deepcopy(dict(change))}
    for key in _PATCHABLE:
        if _mapping(patch.get(key)):
            out[key] = {**_mapping(out.get(key)), **copy.deepcopy(dict(patch[key]))}
    out["baseline"] = {
        "label": patch.get("label") or name,
        "description": patch.get("description", ""),
        "campaigns": campaigns,
    }
    out.pop("variants", None)
    return out


def _variant_problems(
    raw: Mapping, name: str, baseline: list[Problem], base_dir: Path, label: str
) -> list[Problem]:
    """Problems variant ``name`` causes, located under it: those of its plan that the
    baseline plan does not have (``baseline``: its problems), and those in a key its patch
    sets. The baseline's own problems are reported once, under the baseline."""
    patch = _mapping(_mapping(raw.get("variants")).get(name))
    where = ("variants", name)
    base_campaigns = _mapping(_mapping(raw.get("baseline")).get("campaigns"))
    out = []
    for cname, change in _mapping(patch.get("campaigns")).items():
        if change is None and cname not in base_campaigns:
            out.append(
                Problem(
                    where + ("campaigns", cname),
                    f"removes campaign {cname!r}, which the baseline does not have",
                    did_you_mean(str(cname), base_campaigns),
                )
            )
    known = {(p.path, p.message) for p in baseline}
    for problem in _problems(variant_raw(raw, name), base_dir, label):
        # baseline.campaigns.<c>… goes under variants.<name>.campaigns.<c>…, arrivals… under
        # variants.<name>.arrivals…
        path = where + (problem.path[1:] if problem.path[:1] == ("baseline",) else problem.path)
        if (problem.path, problem.message) not in known or _sets(patch, path[len(where) :]):
            out.append(Problem(path, problem.message, problem.hint))
    return out


def _sets(patch: Mapping, path: tuple) -> bool:
    """Whether ``patch`` sets the key that ``path`` lies in (``campaigns.<c>.<key>``,
    ``arrivals.<key>``…)."""
    depth = 3 if path[:1] == ("campaigns",) else 2
    node: Any = patch
    for part in path[:depth]:
        if part not in _mapping(node):
            return False
        node = node[part]
    return len(path) >= depth


def horizon_days(raw: Mapping) -> tuple[dt.date, dt.date] | None:
    """First and last day of the horizon, if the horizon is valid."""
    try:
        horizon = Horizon.model_validate(raw.get("horizon"))
    except ValidationError:
        return None
    days = int(horizon.periods * horizon.step_days)
    return horizon.start, horizon.start + dt.timedelta(days=days - 1)


def _campaign_reference_problems(
    raw: Mapping, base_dir: Path, label: str, failed: Collection[tuple] = ()
) -> list[Problem]:
    """Campaigns that target edges, channels or personas that do not exist, run outside
    the horizon, or read bad spend files. An edge whose source stage's routing already
    failed (a path in ``failed``) is not checked."""
    funnel = _mapping(raw.get("funnel"))
    stages = [str(s) for s in _mapping(funnel.get("stages"))]
    edges: set[tuple[str, str]] = set()
    stage_tables = [_mapping(funnel.get("stages"))] + [
        _mapping(_mapping(seg).get("stages")) for seg in _mapping(raw.get("segments")).values()
    ]
    for table in stage_tables:
        for src, spec in table.items():
            for form in ("next", "rates"):
                for dst, value in _mapping(_mapping(spec).get(form)).items():
                    if isinstance(value, int | float) and value > 0:
                        edges.add((str(src), str(dst)))
    arrivals = _mapping(raw.get("arrivals"))
    channels = list(_mapping(arrivals.get("channels"))) or (["direct"] if arrivals else [])
    refers = any(
        _mapping(spec).get("referrals_per_day") for table in stage_tables for spec in table.values()
    )
    channels += [REFERRAL] if refers else []
    segments = list(_mapping(raw.get("segments")))
    span = horizon_days(raw)
    out: list[Problem] = []
    for cname, spec in _mapping(_mapping(raw.get("baseline")).get("campaigns")).items():
        # key by key, so that a mistake in one key (reported by the schema) hides no other
        spec = _mapping(spec)
        here = ("baseline", "campaigns", cname)
        effects = spec.get("effects")
        for k, effect in enumerate(effects if isinstance(effects, list) else []):
            effect = _valid(EffectSpec, effect)
            if effect is None:
                continue
            if effect.edge is not None and stages:
                src, dst = effect.edge_pair()
                reads = [
                    stages_path + (src, form)
                    for stages_path in [("funnel", "stages")]
                    + [("segments", seg, "stages") for seg in _mapping(raw.get("segments"))]
                    for form in ("next", "rates")
                ]
                if (src, dst) not in edges and not blocked(failed, *reads):
                    known = sorted(f"{a} -> {b}" for a, b in edges)
                    bad = [s for s in (src, dst) if s not in stages and s != LOST]
                    hint = (
                        did_you_mean(bad[0], stages)
                        if bad
                        else f"declare the edge in the funnel first (a small rate is enough); "
                        f"{did_you_mean(effect.edge, known)}"
                    )
                    out.append(
                        Problem(
                            here + ("effects", k, "edge"),
                            f"campaign {cname!r} targets edge {effect.edge!r}, which "
                            "the funnel does not have",
                            hint,
                        )
                    )
            if (
                effect.arrivals is not None
                and effect.arrivals != "*"
                and effect.arrivals not in channels
            ):
                out.append(
                    Problem(
                        here + ("effects", k, "arrivals"),
                        f"unknown arrival channel {effect.arrivals!r}",
                        did_you_mean(effect.arrivals, channels + ["*"])
                        if channels
                        else "the scenario has no `arrivals` to lift",
                    )
                )
        reached = spec.get("segments")
        for k, seg in enumerate(reached if isinstance(reached, list) else []):
            if isinstance(seg, str) and seg not in segments:
                out.append(
                    Problem(
                        here + ("segments", k),
                        f"unknown segment {seg!r}",
                        did_you_mean(seg, segments)
                        if segments
                        else "declare the personas under `segments` first",
                    )
                )
        if span is not None:
            first, last = span
            window: dict[str, dt.date] = {}
            for key, default in (("start", first), ("end", last)):
                try:
                    window[key] = _DATE.validate_python(spec.get(key)) or default
                except ValidationError:
                    continue  # reported by the schema
                if not first <= window[key] <= last:
                    out.append(
                        Problem(
                            here + (key,),
                            f"{key} {window[key]} is outside the horizon",
                            f"the horizon runs from {first} to {last}",
                        )
                    )
            spend = _valid(SpendSpec, spec.get("spend"))
            if (
                spend is not None
                and spend.csv is not None
                and len(window) == 2
                and first <= window["start"] <= window["end"] <= last
            ):
                csv_path = Path(spend.csv)
                path = csv_path if csv_path.is_absolute() else base_dir / csv_path
                _, problems = read_spend_column(
                    path,
                    spend.column or cname,
                    window["start"],
                    window["end"],
                    here + ("spend",),
                    label=str(Path(label).parent / spend.csv),
                )
                out += problems
    return out


def _valid(model: type[_Model], value: Any) -> _Model | None:
    """``value`` as a ``model``, or None when it is not one (the schema reports why)."""
    try:
        return model.model_validate(value)
    except ValidationError:
        return None


def _segment_problems(raw: Mapping) -> list[Problem]:
    """Personas that override stages the funnel does not have, or route to them."""
    out: list[Problem] = []
    stages = [str(s) for s in _mapping(_mapping(raw.get("funnel")).get("stages"))]
    for sname, seg in _mapping(raw.get("segments")).items():
        for stage in _mapping(_mapping(seg).get("stages")):
            if stages and stage not in stages and stage != LOST:
                out.append(
                    Problem(
                        ("segments", sname, "stages", stage),
                        f"segment {sname!r} overrides unknown stage {stage!r}",
                        did_you_mean(str(stage), stages),
                    )
                )
            for form in ("next", "rates"):
                for target in (
                    _mapping(_mapping(_mapping(seg).get("stages")).get(stage)).get(form) or {}
                ):
                    if stages and target not in stages and target != LOST:
                        out.append(
                            Problem(
                                ("segments", sname, "stages", stage, form, target),
                                f"unknown stage {target!r} in `{form}`",
                                did_you_mean(str(target), stages),
                            )
                        )
    return out


def _problems(raw: Mapping, base_dir: Path, label: str) -> list[Problem]:
    """Every problem of one plan: the schema's, the cross-references', the personas' and
    the campaigns'. Each later check skips what depends on a path an earlier one
    reported, so that a mistake is reported once, at its root."""
    schema, unreadable = check_schema(raw)
    references = reference_problems(raw, unreadable)
    failed = set(unreadable) | {p.path for p in references if p.path}
    return (
        schema
        + references
        + _segment_problems(raw)
        + _campaign_reference_problems(raw, base_dir, label, failed)
    )


def plan_problems(raw: Mapping, base_dir: Path, label: str) -> list[Problem]:
    """Every problem in the scenario: the baseline plan's, then each variant's (see
    module docstring), and whether anyone is ever in the funnel."""
    baseline = _problems(raw, base_dir, label)
    variants = _mapping(raw.get("variants"))
    reserved = [
        Problem(
            ("variants", BASELINE),
            f"a variant cannot be named {BASELINE!r}: that is the name of the plan every "
            "variant is compared with",
            "rename the variant, or put these campaigns under the top-level `baseline:`",
        )
        for name in variants
        if name == BASELINE
    ]
    return (
        baseline
        + reserved
        + [
            problem
            for name in variants
            for problem in _variant_problems(raw, name, baseline, base_dir, label)
        ]
        + _nobody_problems(raw)
    )


def has_people(raw: Mapping) -> bool | None:
    """Whether a plan ever has anyone in its funnel: arrivals at a positive rate or
    someone in `population.initial` (word of mouth and a market size only act on people
    who are there). None when the answer depends on a value that does not parse."""
    if blocked(check_schema(raw).unreadable, ("arrivals",), ("population",)):
        return None
    per_day = _number(_mapping(raw.get("arrivals")).get("per_day", 0))
    initial = _mapping(_mapping(raw.get("population")).get("initial"))
    return per_day > 0 or any(_number(n) > 0 for n in initial.values())


def _number(value: object) -> float:
    """A count as the schema reads it (a quoted "5000" included); 0 if it is not one."""
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0.0


def _nobody_problems(raw: Mapping) -> list[Problem]:
    """A scenario in which no plan ever has anyone in the funnel forecasts nothing (its
    conversion rate is 0 / 0). A variant that adds people makes the scenario valid."""
    names = list(_mapping(raw.get("variants")))
    if has_people(raw) is not False or any(
        has_people(variant_raw(raw, name)) is not False for name in names
    ):
        return []
    arrivals, initial = raw.get("arrivals"), _mapping(raw.get("population")).get("initial")
    if arrivals is not None:
        where: tuple[str | int, ...] = ("arrivals", "per_day")
        message = "nobody is ever in the funnel: `arrivals.per_day` is 0"
        message += " and `population.initial` puts nobody in it" if initial is not None else ""
    elif initial is not None:
        where, message = ("population", "initial"), "nobody is ever in the funnel: "
        message += "`population.initial` puts nobody in it and there are no `arrivals`"
    else:
        where = ()
        message = "nobody is ever in the funnel: the scenario has no `arrivals` and no "
        message += "`population.initial`"
    return [
        Problem(
            where,
            message,
            "add new people per day (`arrivals: {per_day: 300}`) or people there at the "
            "start (`population: {initial: {awareness: 5000}}`)",
        )
    ]


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
                    path,
                    spec.spend.column or name,
                    start + dt.timedelta(days=first),
                    start + dt.timedelta(days=last),
                    ("baseline", "campaigns", name, "spend"),
                )
                if problems or window is None:
                    raise ScenarioError(problems, str(path))
                spend = spread_spend(n_days, first, last, per_day=0.0)
                spend[first : last + 1] = window
            else:
                spend = spread_spend(
                    n_days, first, last, total=spec.spend.total, per_day=spec.spend.per_day
                )
        out.append(campaign_of(name, spec, first, last, n_days, spend))
    return out


def campaign_of(
    name: str, spec: CampaignSpec, first: int, last: int, n_days: int, spend: Any
) -> Campaign:
    """A validated campaign on ``n_days`` days (day 0 = the start of the days), running
    from day ``first`` to ``last`` with daily ``spend`` (None: no spend figure)."""
    return Campaign(
        name=name,
        start=first,
        end=last,
        n_days=n_days,
        spend=spend,
        carryover=spec.carryover,
        half_saturation=spec.half_saturation,
        shape=spec.shape,
        edge_lifts={e.edge_pair(): e.lift for e in spec.effects if e.edge is not None},
        arrival_lifts={e.arrivals: e.lift for e in spec.effects if e.arrivals is not None},
        segments=tuple(spec.segments),
        cost_per_day=spec.cost_per_day,
        fixed_cost=spec.fixed_cost,
    )
