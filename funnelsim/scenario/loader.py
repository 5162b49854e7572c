"""Read a scenario file, resolve its funnel reference, and report every problem at once."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from funnelsim.errors import Problem, ScenarioError, did_you_mean
from funnelsim.funnel import LOST, list_presets, load_preset
from funnelsim.scenario.checks import memory_problem, warning_problems
from funnelsim.scenario.plans import plan_problems
from funnelsim.scenario.schema import Scenario
from funnelsim.scenario.yamlio import LineMap, read_yaml_with_problems

__all__ = ["load_scenario", "scenario_warnings", "validate_file"]


def _resolve_funnel(raw: dict, base: Path, lines: LineMap, label: str) -> list[Problem]:
    """Replace a preset name or funnel-file path in ``raw["funnel"]`` by its mapping.

    Returns the problems found on the way; ``raw["funnel"]`` stays a string when the
    reference could not be resolved.
    """
    ref = raw.get("funnel")
    if not isinstance(ref, str):
        return []
    presets = list(list_presets())
    if ref in presets:
        raw["funnel"] = load_preset(ref)
        return []
    path = Path(ref) if Path(ref).is_absolute() else base / ref
    looks_like_file = ref.endswith((".yaml", ".yml")) or "/" in ref
    if not looks_like_file:
        return [Problem(("funnel",), f"unknown preset {ref!r}", did_you_mean(ref, presets))]
    try:
        data, funnel_lines, problems = read_yaml_with_problems(
            path,
            prefix=("funnel",),
            label=str(Path(label).parent / ref) if not Path(ref).is_absolute() else ref,
        )
    except ScenarioError as exc:
        also = "" if path.is_file() else "; or name a preset: " + ", ".join(presets)
        return [
            Problem(p.path, p.message, p.hint + also, file=p.file, line=p.line)
            for p in exc.problems
        ]
    if isinstance(data, Mapping) and "funnel" in data and "stages" not in data:
        data = data["funnel"]
        funnel_lines = {
            (k[:1] + k[2:]): v for k, v in funnel_lines.items() if k[1:2] == ("funnel",)
        }
        problems = [
            Problem(p.path[:1] + p.path[2:], p.message, p.hint, file=p.file, line=p.line)
            for p in problems
            if p.path[1:2] == ("funnel",)
        ]
    raw["funnel"] = data
    lines.update({k: v for k, v in funnel_lines.items() if k[:1] == ("funnel",) and len(k) > 1})
    return problems


def _resolve_fit(raw: dict, base: Path) -> tuple[Any, list[Problem]]:
    """Load the fit a scenario names in ``fit:`` and put its funnel (posterior means) in
    ``raw["funnel"]``. Returns ``(fit or None, problems)``."""
    ref = raw.get("fit")
    if ref is None:
        return None, []
    if not isinstance(ref, str):
        return None, [Problem(("fit",), "`fit` must be the path of a fit file (FIT.nc)")]
    if "funnel" in raw:
        return None, [
            Problem(
                ("funnel",),
                "a scenario with `fit:` takes its funnel from the fit",
                "remove `funnel:` (or `fit:` to use the funnel as written)",
            )
        ]
    from funnelsim.errors import FunnelsimError
    from funnelsim.inference.fitted import FittedFunnel

    path = Path(ref) if Path(ref).is_absolute() else base / ref
    if not path.is_file():
        return None, [
            Problem(
                ("fit",), f"fit file not found: {ref}", "paths are relative to the scenario file"
            )
        ]
    try:
        fit = FittedFunnel.load(path)
    except FunnelsimError as exc:
        return None, [Problem(("fit",), str(exc), "paths are relative to the scenario file")]
    raw["funnel"] = fit.funnel_spec()
    problems = []
    segments = raw.get("segments")
    if isinstance(segments, Mapping):
        fitted = [s for s in fit.segments if s != "all"]
        for name, seg in segments.items():
            if isinstance(seg, Mapping) and seg.get("stages"):
                problems.append(
                    Problem(
                        ("segments", name, "stages"),
                        "with `fit:` each persona's rates come from the fit",
                        "remove the persona's `stages:`",
                    )
                )
            elif fitted and name not in fitted:
                problems.append(
                    Problem(
                        ("segments", name),
                        f"the fit has no segment {name!r}",
                        did_you_mean(str(name), fitted),
                    )
                )
    if [s for s in fit.segments if s != "all"] and not segments:
        problems.append(
            Problem(
                ("fit",),
                "the fit has segments " + ", ".join(fit.segments) + ": name them under "
                "`segments:` with their shares",
                "e.g. `segments: {" + fit.segments[0] + ": {share: 0.5}, ...}`",
            )
        )
    return fit, problems


def _resolve_population_fit(
    raw: dict, base: Path, fit: Any, keep: dict | None = None
) -> list[Problem]:
    """``population: {from_fit: FIT.nc}``: put the nowcast's expected occupancy of each
    stage in ``population.initial`` (checked against the scenario's funnel and start);
    ``keep["start"]`` receives ``(the fit, its nowcast)`` for per-replicate starts."""
    population = raw.get("population")
    if not isinstance(population, Mapping) or population.get("from_fit") is None:
        return []
    ref = population["from_fit"]
    where = ("population", "from_fit")
    if not isinstance(ref, str):
        return [Problem(where, "`from_fit` must be the path of a journey fit (FIT.nc)")]
    if population.get("initial"):
        return [
            Problem(
                ("population", "initial"),
                "give `initial` or `from_fit`, not both",
                "`from_fit` fills `initial` from where the fit's customers stand",
            )
        ]
    from funnelsim.errors import FunnelsimError
    from funnelsim.inference.fitted import FittedFunnel
    from funnelsim.inference.nowcast import nowcast

    path = Path(ref) if Path(ref).is_absolute() else base / ref
    if not path.is_file():
        return [
            Problem(where, f"fit file not found: {ref}", "paths are relative to the scenario file")
        ]
    try:
        source = fit if fit is not None and raw.get("fit") == ref else FittedFunnel.load(path)
        funnel = raw.get("funnel")
        stages = list(funnel.get("stages") or {}) if isinstance(funnel, Mapping) else []
        theirs = [s for s in source.stages if s != LOST]
        if stages and set(theirs) != set(s for s in stages if s != LOST):
            return [
                Problem(
                    where,
                    f"the fit's stages ({', '.join(theirs)}) are not the scenario funnel's "
                    f"({', '.join(s for s in stages if s != LOST)})",
                    "use a fit of this funnel, or `fit:` the same file so the funnel comes from it",
                )
            ]
        seed = raw.get("seed") if isinstance(raw.get("seed"), int) else None
        now = nowcast(source, seed=seed)
        end = now.end
        horizon = raw.get("horizon")
        start = horizon.get("start") if isinstance(horizon, Mapping) else None
        if start is not None and abs(pd.Timestamp(str(start)) - end) > pd.Timedelta(days=1):
            return [
                Problem(
                    ("horizon", "start"),
                    f"the forecast starts on {start} but the fit's data end on "
                    f"{end:%Y-%m-%d %H:%M}: a forecast from the fit must continue from there",
                    f"set `start: {end:%Y-%m-%d}`",
                )
            ]
        occupancy = now.occupancy
    except FunnelsimError as exc:
        return [Problem(where, str(exc), "give a fit of an event log (`--kind journeys`)")]
    initial = {
        str(r.stage): int(round(r.active_mean))
        for r in occupancy.itertuples()
        if r.active_mean >= 0.5
    }
    raw["population"] = {k: v for k, v in population.items() if k != "from_fit"} | {
        "initial": initial
    }
    if keep is not None:
        keep["start"] = (source, now)
    return []


def _locate(problem: Problem, lines: LineMap, label: str) -> Problem:
    if problem.line is not None:
        return problem  # located where it was found (e.g. in a funnel file)
    path = problem.path
    for n in range(len(path), -1, -1):
        if path[:n] in lines:
            file, line = lines[path[:n]]
            return Problem(problem.path, problem.message, problem.hint, file=file, line=line)
    return Problem(problem.path, problem.message, problem.hint, file=label)


def collect_problems(
    raw: Any, base: Path, lines: LineMap, label: str, found: Sequence[Problem] = ()
) -> list[Problem]:
    """Every problem in the parsed scenario ``raw``, located (plus ``found`` ones, e.g.
    duplicate keys seen while reading)."""
    return _collect(raw, base, lines, label, found)[0]


def _collect(
    raw: Any,
    base: Path,
    lines: LineMap,
    label: str,
    found: Sequence[Problem] = (),
    start: dict | None = None,
) -> tuple[list[Problem], Any]:
    """:func:`collect_problems`, and the fit the scenario names (None without one); a
    fit replaces ``raw["funnel"]`` by its funnel."""
    if not isinstance(raw, dict):
        got = "an empty file" if raw is None else f"a {type(raw).__name__}"
        return list(found) + [
            Problem(
                (),
                f"a scenario file must be a mapping of keys, got {got}",
                "start from scenarios/bike_shop.yaml",
                file=label,
                line=1,
            )
        ], None
    fit, fit_problems = _resolve_fit(raw, base)
    problems = list(found) + fit_problems + _resolve_funnel(raw, base, lines, label)
    starting = [] if problems else _resolve_population_fit(raw, base, fit, start)
    if (fit_problems and "funnel" not in raw) or starting:  # later checks would only echo them
        problems += starting
        located = dict.fromkeys(_locate(p, lines, label) for p in problems)
        return sorted(located, key=lambda p: (p.file != label, p.file or "", p.line or 0)), fit
    checked = plan_problems(raw, base, label)
    if isinstance(raw.get("funnel"), str):  # unresolved reference, reported above
        checked = [p for p in checked if p.path[:1] != ("funnel",)]
    unique = list(dict.fromkeys(_locate(p, lines, label) for p in problems + checked))
    return sorted(unique, key=lambda p: (p.file != label, p.file or "", p.line or 0)), fit


def load_scenario(path: str | Path) -> Scenario:
    """Load and validate a scenario file.

    Raises :class:`~funnelsim.errors.ScenarioError` listing every problem, each with its
    file, line, YAML path and a hint.

    >>> s = load_scenario("scenarios/bike_shop.yaml")  # doctest: +SKIP
    >>> s.funnel.goal  # doctest: +SKIP
    'conversion'
    """
    path = Path(path)
    label = str(path)
    raw, lines, duplicates = read_yaml_with_problems(path, label=label)
    start: dict = {}
    problems, fit = _collect(raw, path.parent, lines, label, duplicates, start)
    if problems:
        raise ScenarioError(problems, label)
    scenario = Scenario.model_validate(raw)
    scenario._source = path
    scenario._fit = fit
    scenario._start = start.get("start")
    scenario._lines = lines
    return scenario


def validate_file(path: str | Path) -> list[Problem]:
    """All problems in a scenario file (empty when it is valid)."""
    try:
        load_scenario(path)
    except ScenarioError as exc:
        return exc.problems
    return []


def source_of(scenario: Scenario) -> Path | None:
    """The file a scenario was loaded from, if any."""
    return scenario._source


def scenario_warnings(
    scenario: Scenario, replicates: int | None = None, engine: str | None = None
) -> list[Problem]:
    """Inputs of a loaded scenario that run but that a planner may not intend, located
    like errors (file, line, YAML path, message, hint), in file order: implausible lifts,
    persona shares that are normalised, and a run whose estimated memory exceeds the
    machine's with ``replicates`` and ``engine`` (default: the file's)."""
    found = warning_problems(scenario)
    memory = memory_problem(scenario, replicates or scenario.replicates, engine or scenario.engine)
    found += [memory] if memory is not None else []
    label = str(scenario._source) if scenario._source is not None else ""
    located = [_locate(p, scenario._lines, label) for p in found]
    return sorted(located, key=lambda p: (p.file != label, p.file or "", p.line or 0))
