"""Turn everything wrong with a scenario into located :class:`~funnelsim.errors.Problem` s.

Two passes over the raw YAML data, so that one run reports every problem:
1. the pydantic schema (types, ranges, unknown keys with "did you mean");
2. cross-references the schema cannot see (stage names used in ``next``, ``goal``,
   ``arrivals.stage``, ``population.initial``, ``economics.value_per_entry``; a path
   from the entry to the goal; the goal valued twice).
Pass 2 reads the raw data defensively, and a check that reads a value pass 1 could not
parse is skipped (:func:`blocked`): a mistake is reported once, at its root, not again
as its consequences ("no path to the goal" after a probability written ``35%``).

Warnings are inputs that run but that a planner may not intend (:func:`warning_problems`,
:func:`memory_problem`): implausible lifts, normalised persona shares, a run larger than
the machine's memory.
"""

from __future__ import annotations

import difflib
import os
import typing
from collections.abc import Collection, Mapping
from typing import Any, NamedTuple

from pydantic import BaseModel, ValidationError

from funnelsim.errors import Problem, did_you_mean
from funnelsim.funnel import LOST
from funnelsim.scenario.schema import HINT, SUM_NOT_ONE, SUM_TOLERANCE, Scenario

__all__ = [
    "SchemaCheck",
    "blocked",
    "check_schema",
    "estimate_result_bytes",
    "memory_problem",
    "physical_memory_bytes",
    "reference_problems",
    "schema_problems",
    "warning_problems",
]

_HINTS = {
    "date_from_datetime_parsing": "write dates as YYYY-MM-DD, e.g. 2026-11-01",
    "date_parsing": "write dates as YYYY-MM-DD, e.g. 2026-11-01",
    "date_type": "write dates as YYYY-MM-DD, e.g. 2026-11-01",
    "greater_than": "use a positive number",
    "greater_than_equal": "negative values make no sense here",
    "int_parsing": "use a whole number",
    "int_from_float": "use a whole number",
    "float_parsing": "use a number",
    "finite_number": "write a number here; .nan and .inf are not numbers to plan with",
    "string_type": "write plain text here",
    "dict_type": "this should be a mapping of `key: value` lines",
    "model_type": "this should be a mapping of `key: value` lines",
}


class _DictValue:
    """Marker: the next location part is a dict key whose value has type ``inner``."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner


def _walk_loc(model: type[BaseModel], loc: tuple) -> type[BaseModel] | None:
    """Resolve ``loc`` through models and dicts (dict keys are skipped)."""
    current: Any = model
    for part in loc:
        if isinstance(current, _DictValue):
            current = _unwrap(current.inner)
            continue
        if isinstance(part, int):
            continue  # a list item: ``current`` is already the item type
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        field = current.model_fields.get(str(part))
        if field is None:
            return None
        current = _unwrap(field.annotation)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unwrap(tp: Any) -> Any:
    for _ in range(6):
        origin = typing.get_origin(tp)
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if origin is dict and len(args) == 2:
            return _DictValue(args[1])
        if origin is not None and args:
            tp = args[0]
        else:
            return tp
    return tp


class SchemaCheck(NamedTuple):
    """What the schema found: the problems, and the paths whose values could not be read
    (a check that reads one of them is skipped, so that only the root cause is reported)."""

    problems: list[Problem]
    unreadable: frozenset[tuple[str | int, ...]]


def schema_problems(raw: Mapping) -> list[Problem]:
    """Problems found by the pydantic schema, with paths and hints. A required key that
    is missing because it is misspelt is reported once, as the unknown key."""
    return check_schema(raw).problems


def check_schema(raw: Mapping) -> SchemaCheck:
    """Validate ``raw`` against the schema: its problems (see :func:`schema_problems`) and
    the paths that failed to parse. A value of the wrong type or out of range, a mapping
    with an unknown key (its meaning is uncertain) and a missing key are unreadable; a
    table whose shares do not sum to 1 is not (its values are still numbers)."""
    try:
        Scenario.model_validate(raw)
    except ValidationError as exc:
        errors = exc.errors()
    else:
        return SchemaCheck([], frozenset())
    unreadable: set[tuple] = set()
    for err in errors:
        loc = _clean(err["loc"])
        if err["type"] == SUM_NOT_ONE:
            continue
        if err["type"] == "extra_forbidden":
            loc = loc[:-1]
        if loc:  # an unknown top-level key makes nothing else uncertain
            unreadable.add(loc)
    return SchemaCheck(_problems_from(errors), frozenset(unreadable))


def blocked(failed: Collection[tuple], *paths: tuple) -> bool:
    """Whether a check that reads ``paths`` depends on something that already failed: a
    failed path lies inside one of them, or one of them lies inside a failed path."""
    return any(f[: len(p)] == p or p[: len(f)] == f for f in failed for p in paths)


def _problems_from(errors: list[Any]) -> list[Problem]:
    misspelt: set[tuple] = set()  # required keys whose misspelling is an unknown key
    for err in errors:
        if err["type"] == "extra_forbidden":
            loc = _clean(err["loc"])
            close = difflib.get_close_matches(str(loc[-1]), _allowed(loc[:-1]), n=1)
            misspelt.update(loc[:-1] + (key,) for key in close)
    out = []
    for err in errors:
        loc = _clean(err["loc"])
        kind = err["type"]
        if kind == "string_type" and err["loc"][-1:] == ("[key]",):
            out.append(
                Problem(
                    loc,
                    f"the name {loc[-1]!r} should be text",
                    f"put it in quotes: '{loc[-1]}'",
                )
            )
            continue
        if kind == "extra_forbidden":
            out.append(
                Problem(
                    loc,
                    f"unknown key {loc[-1]!r}",
                    did_you_mean(str(loc[-1]), _allowed(loc[:-1])),
                )
            )
        elif kind == "missing":
            if loc not in misspelt:
                out.append(Problem(loc, f"required key {loc[-1]!r} is missing"))
        elif kind in ("value_error", SUM_NOT_ONE):
            message, _, hint = err["msg"].removeprefix("Value error, ").partition(HINT)
            out.append(Problem(loc, message, hint))
        else:
            got = err.get("input")
            shown = f" (got {got!r})" if not isinstance(got, dict | list) else ""
            hint = _HINTS.get(kind, "")
            if kind == "less_than_equal" and len(loc) > 1 and loc[-2] == "next":
                hint = "a probability is between 0 and 1"
            if kind == "less_than" and loc[-1:] == ("carryover",):
                hint = "the share of yesterday's adstock still working today is below 1"
            if kind == "float_parsing" and isinstance(got, str):
                hint = _percent_hint(got, lift=loc[-1:] == ("lift",)) or hint
            if kind == "literal_error":
                choices = [
                    c.strip(" '")
                    for c in str(err.get("ctx", {}).get("expected", ""))
                    .replace(" or ", ", ")
                    .split(",")
                    if c.strip(" '")
                ]
                hint = did_you_mean(str(got), choices)
            out.append(Problem(loc, err["msg"] + shown, hint))
    return out


def _percent_hint(text: str, lift: bool = False) -> str:
    """``"35%"`` → a hint to write ``0.35`` (a lift: ``1.35``); empty when ``text`` is
    not a percentage."""
    text = text.strip()
    try:
        share = float(text.removesuffix("%")) / 100 if text.endswith("%") else None
    except ValueError:
        return ""
    if share is None:
        return ""
    if lift:
        return f"a lift is a multiplier: for {share:+.0%} write {1 + share:g}"
    return f"write a share as a number: {share:g}, not {text}"


def _clean(loc: tuple) -> tuple:
    return tuple(p for p in loc if not _is_union_tag(p) and p != "[key]")


def _allowed(loc: tuple) -> list[str]:
    """The keys allowed at ``loc`` (none when it is not a model)."""
    parent = _walk_loc(Scenario, loc)
    return list(parent.model_fields) if parent else []


def _is_union_tag(part: object) -> bool:
    # pydantic inserts the member type name for unions / function validators in loc
    return isinstance(part, str) and (
        part.startswith("function-") or part in {"float", "int", "str", "constrained-float"}
    )


def _mapping(value: Any) -> Mapping:
    return value if isinstance(value, Mapping) else {}


def reference_problems(raw: Mapping, unreadable: Collection[tuple] = ()) -> list[Problem]:
    """Problems in how the parts of a scenario refer to each other. A check that reads a
    path in ``unreadable`` (see :func:`check_schema`) is skipped: its problem would only
    follow from one already reported."""
    funnel = _mapping(raw.get("funnel"))
    stages_raw = _mapping(funnel.get("stages"))
    arrivals = _mapping(raw.get("arrivals"))
    out: list[Problem] = []
    if not stages_raw:
        return out  # nothing to cross-check; the schema reported why
    stages = [str(s) for s in stages_raw]
    known = stages + ([LOST] if LOST not in stages else [])
    out += _engine_problems(raw, stages_raw)

    def check_stage(path: tuple, name: Any, what: str, allow_lost: bool = True) -> bool:
        choices = known if allow_lost else stages
        if name is None or name in choices:
            return True
        if not isinstance(name, str):
            return False  # not a name at all: the schema reported it
        out.append(
            Problem(path, f"unknown stage {name!r} in {what}", did_you_mean(str(name), choices))
        )
        return False

    ok = True
    for stage, spec in stages_raw.items():
        spec = _mapping(spec)
        for form in ("next", "rates"):
            for target in _mapping(spec.get(form)):
                path = ("funnel", "stages", stage, form, target)
                ok &= check_stage(path, target, f"`{form}` of {stage!r}")
    goal = funnel.get("goal")
    if goal == LOST:
        out.append(
            Problem(
                ("funnel", "goal"),
                "the goal cannot be `lost`",
                "name the stage whose entries are conversions",
            )
        )
        ok = False
    elif goal is not None:
        ok &= check_stage(("funnel", "goal"), goal, "`goal`", allow_lost=False)
    entry = funnel.get("entry")
    ok &= check_stage(("funnel", "entry"), entry, "`entry`", allow_lost=False)

    arrival_stage = arrivals.get("stage")
    ok &= check_stage(("arrivals", "stage"), arrival_stage, "`arrivals.stage`", allow_lost=False)
    for stage in _mapping(_mapping(raw.get("population")).get("initial")):
        check_stage(("population", "initial", stage), stage, "`population.initial`")
    for stage in _mapping(_mapping(raw.get("economics")).get("value_per_entry")):
        check_stage(("economics", "value_per_entry", stage), stage, "`economics.value_per_entry`")

    out += _goal_value_problems(raw, goal, stages)
    routing = [("funnel", "stages", s, form) for s in stages_raw for form in ("next", "rates")]
    reads = [("funnel", "goal"), ("funnel", "entry"), ("arrivals", "stage"), *routing]
    if ok and goal is not None and not blocked(unreadable, *reads):
        start = arrival_stage or entry or stages[0]
        if not _reaches(stages_raw, str(start), str(goal)):
            where = ("arrivals", "stage") if arrival_stage else ("funnel", "goal")
            out.append(
                Problem(
                    where,
                    f"no path from the entry stage {start!r} to the goal {goal!r}",
                    "add an edge (in `next` or `rates`) that leads towards the goal",
                )
            )
    return out


def _goal_value_problems(raw: Mapping, goal: Any, stages: list[str]) -> list[Problem]:
    """Entries into the goal are conversions and earn `value_per_conversion` only: a
    `value_per_entry` for the goal would value each sale twice (or in the wrong key)."""
    economics = _mapping(raw.get("economics"))
    per_entry = _mapping(economics.get("value_per_entry"))
    if not isinstance(goal, str) or goal not in stages or goal not in per_entry:
        return []
    value, per_conversion = per_entry[goal], economics.get("value_per_conversion")
    shown = f"{value:g}" if isinstance(value, int | float) else repr(value)
    if isinstance(per_conversion, int | float) and per_conversion > 0:
        message = (
            f"{goal!r} is the goal: each entry into it is a conversion, already worth "
            f"`value_per_conversion` ({per_conversion:g}); this {shown} would count every "
            "sale twice"
        )
        hint = "put the whole value of a sale in `value_per_conversion` and remove this line"
    else:
        message = (
            f"{goal!r} is the goal: entries into it are conversions, valued by "
            "`value_per_conversion`, not `value_per_entry`"
        )
        hint = f"put the value in value_per_conversion: `value_per_conversion: {shown}`"
    return [Problem(("economics", "value_per_entry", goal), message, hint)]


def _engine_problems(raw: Mapping, stages_raw: Mapping) -> list[Problem]:
    """Queues and non-Erlang dwell need the agent engine; `lost` serves nobody; a queue is
    shared by all personas."""
    out = []
    engine = raw.get("engine", "counts")
    for name, spec in stages_raw.items():
        spec = _mapping(spec)
        where = ("funnel", "stages", name)
        if _mapping(spec.get("capacity")):
            if name == LOST:
                out.append(
                    Problem(
                        where + ("capacity",),
                        "`lost` cannot have a capacity",
                        "people who left the funnel are served by nobody; put the "
                        "capacity on the stage that needs the servers",
                    )
                )
            elif engine in ("counts", "expected"):
                out.append(
                    Problem(
                        where + ("capacity",),
                        f"a stage with `capacity` needs the agents engine, not {engine!r}",
                        "set `engine: agents`",
                    )
                )
        dwell = _mapping(spec.get("dwell"))
        dist, shape = dwell.get("dist", "exponential"), dwell.get("shape")
        erlang = dist == "gamma" and isinstance(shape, int | float) and float(shape).is_integer()
        if dist in ("lognormal", "weibull", "fixed") or (
            dist == "gamma" and shape is not None and not erlang
        ):
            if engine in ("counts", "expected"):
                out.append(
                    Problem(
                        where + ("dwell", "dist"),
                        f"a {dist} dwell"
                        + (" with a fractional shape" if dist == "gamma" else "")
                        + f" needs the agents engine, not {engine!r}",
                        "set `engine: agents`, or use a gamma dwell with a whole-"
                        "number shape (the count engines expand it into phases)",
                    )
                )
    for seg, spec in _mapping(raw.get("segments")).items():
        for name, stage in _mapping(_mapping(spec).get("stages")).items():
            if _mapping(stage).get("capacity") is not None:
                out.append(
                    Problem(
                        ("segments", seg, "stages", name, "capacity"),
                        "a persona cannot have its own capacity",
                        "servers are shared by everyone: set `capacity` on the funnel's stage",
                    )
                )
    return out


def _reaches(stages: Mapping, start: str, goal: str) -> bool:
    seen, frontier = {start}, [start]
    while frontier:
        spec = _mapping(stages.get(frontier.pop()))
        table = _mapping(spec.get("next")) or _mapping(spec.get("rates"))
        for target, value in table.items():
            if isinstance(value, int | float) and value > 0 and target not in seen:
                seen.add(target)
                frontier.append(target)
    return goal in seen


# --- warnings: inputs that run, but that a planner may not intend ---------------------

#: a lift outside [1 / LIFT_LIMIT, LIFT_LIMIT] is probably a percentage or a typo
LIFT_LIMIT = 10.0
#: peak memory of a run / the size of its result arrays: the engine's arrays of every
#: plan (1×), the xarray Dataset built from them (1×), and working copies while replicates
#: are stacked and summaries and files are computed (≈1×)
MEMORY_SAFETY_FACTOR = 3
#: assumed when the machine's memory cannot be read
FALLBACK_MEMORY_BYTES = 8 * 2**30


def warning_problems(scenario: Scenario) -> list[Problem]:
    """Inputs that are valid but implausible, as (unlocated) problems: a campaign lift
    above 10 or below 0.1 (a percentage written as a multiplier?), persona shares that do
    not sum to 1 (they are normalised)."""
    out = []
    for name, campaign in scenario.baseline.campaigns.items():
        for k, effect in enumerate(campaign.effects):
            out += _lift_warning(("baseline", "campaigns", name, "effects", k, "lift"), effect.lift)
    for vname, variant in scenario.variants.items():
        for name, patch in variant.campaigns.items():
            effects = _mapping(patch).get("effects")
            for k, effect in enumerate(effects if isinstance(effects, list) else []):
                lift = _mapping(effect).get("lift")
                where = ("variants", vname, "campaigns", name, "effects", k, "lift")
                out += _lift_warning(where, lift) if isinstance(lift, int | float) else []
    shares = {name: seg.share for name, seg in scenario.segments.items()}
    total = sum(shares.values())
    if shares and abs(total - 1.0) > SUM_TOLERANCE:
        split = ", ".join(f"{name} {share / total:.1%}" for name, share in shares.items())
        out.append(
            Problem(
                ("segments",),
                f"persona shares sum to {total:g}, not 1: each is divided by {total:g}, "
                f"so arrivals and the initial population split {split}",
                "make the shares add up to 1 so that the file says what runs",
            )
        )
    return out


def _lift_warning(where: tuple[str | int, ...], lift: float) -> list[Problem]:
    if lift > LIFT_LIMIT:
        return [
            Problem(
                where,
                f"lift {lift:g} multiplies the rate by {lift:g} at full pressure",
                f"a lift is a multiplier: 1.5 is +50%; if you meant +{lift:g}%, "
                f"write {1 + lift / 100:g}",
            )
        ]
    if 0 < lift < 1 / LIFT_LIMIT:
        return [
            Problem(
                where,
                f"lift {lift:g} divides the rate by {1 / lift:.3g} at full pressure",
                f"a lift is a multiplier: 0.6 is −40%; if you meant −{lift * 100:g}%, "
                f"write {1 - lift:g}",
            )
        ]
    return []


def physical_memory_bytes() -> int | None:
    """The machine's physical memory, or None where the system does not say."""
    try:
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        return None
    return pages * size if pages > 0 and size > 0 else None


def estimate_result_bytes(scenario: Scenario, replicates: int, engine: str) -> int:
    """Estimated peak memory of running ``scenario`` (every plan) with ``replicates``
    replicates on ``engine``: the result arrays of :class:`~funnelsim.engines.base.RawRun`
    per plan, ``occupancy`` R×T×S, ``flows`` R×T×S×S, ``arrivals`` R×T×K, ``entries``
    R×T×S×K and ``initial`` R×S, 8 bytes each, times :data:`MEMORY_SAFETY_FACTOR`.

    R is 1 for the deterministic ``expected`` engine, T the number of periods, S the
    stages with `lost`, K personas × channels (arrival channels, `referral` with word of
    mouth, `existing` with an initial population), the largest over the plans. The
    agent engine's per-customer state comes on top.
    """
    r = 1 if engine == "expected" else replicates
    t = scenario.horizon.periods
    s = len(scenario.funnel.stages) + (LOST not in scenario.funnel.stages)
    patches: list[tuple[Mapping, Mapping]] = [({}, {})] + [
        (v.arrivals or {}, v.population or {}) for v in scenario.variants.values()
    ]
    per_plan = [_cells(scenario, arrivals, population) for arrivals, population in patches]
    k = max(per_plan)
    per_replicate = 8 * (t * (s + s * s + k + s * k) + s)
    return MEMORY_SAFETY_FACTOR * len(per_plan) * r * per_replicate


def _cells(scenario: Scenario, arrivals_patch: Mapping, population_patch: Mapping) -> int:
    """Arrival cells (personas × channels) of the plan that patches the scenario's
    `arrivals` and `population` with these keys."""
    base = scenario.arrivals.model_dump() if scenario.arrivals is not None else {}
    arrivals = {**base, **arrivals_patch}
    population = {**scenario.population.model_dump(), **population_patch}
    channels = len(_mapping(arrivals.get("channels"))) or (1 if arrivals else 0)
    stages = [scenario.funnel.stages] + [seg.stages for seg in scenario.segments.values()]
    refers = any(spec.referrals_per_day > 0 for table in stages for spec in table.values())
    existing = any(_mapping(population.get("initial")).values())
    return max(1, len(scenario.segments)) * max(1, channels + refers + existing)


def memory_problem(
    scenario: Scenario, replicates: int, engine: str, memory: int | None = None
) -> Problem | None:
    """A warning when the estimated memory of a run (:func:`estimate_result_bytes`)
    exceeds the machine's (``memory``, default :func:`physical_memory_bytes`), naming
    the estimate, the machine's memory and the largest replicate count that fits."""
    known = memory if memory is not None else physical_memory_bytes()
    available = known if known is not None else FALLBACK_MEMORY_BYTES
    need = estimate_result_bytes(scenario, replicates, engine)
    if need <= available:
        return None
    per_replicate = need / (1 if engine == "expected" else replicates)
    fits = int(available // per_replicate)
    machine = f"this machine's {_size(available)}"
    if known is None:
        machine = f"{_size(available)} (assumed: this machine's memory could not be read)"
    plans = 1 + len(scenario.variants)
    hint = (
        f"use at most {fits:,} replicates (`--replicates {fits}`), or fewer periods or plans"
        if fits > 0
        else "even one replicate does not fit: use fewer periods (or weekly steps) or plans"
    )
    return Problem(
        ("replicates",),
        f"{replicates:,} replicates of {plans} plan{'s' if plans != 1 else ''} need about "
        f"{_size(need)} of memory (an estimate), more than {machine}",
        hint,
    )


def _size(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1000:
            return f"{n:.3g} {unit}"
        n /= 1000
    return f"{n:,.3g} TB"
