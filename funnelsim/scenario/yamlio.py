"""YAML reading that remembers the line of every key, for located error messages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from funnelsim.errors import Problem, ScenarioError

__all__ = ["read_yaml", "read_yaml_with_problems", "LineMap"]

#: path within the document → (file, 1-based line)
LineMap = dict[tuple[str | int, ...], tuple[str, int]]


class _Loader(yaml.SafeLoader):
    """Safe loader that keeps impossible dates (``2026-13-45``) as text for the schema to report."""


def _construct_timestamp(loader: _Loader, node: yaml.ScalarNode) -> Any:
    try:
        return loader.construct_yaml_timestamp(node)
    except ValueError:
        return loader.construct_scalar(node)


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _construct_timestamp)


def _walk(
    node: yaml.Node,
    path: tuple,
    label: str,
    out: LineMap,
    dups: list[Problem],
    inside: tuple[yaml.Node, ...] = (),
) -> None:
    """Record the line of every key under ``node``; report keys given twice in one mapping
    (a silent overwrite is a classic YAML trap). ``inside``: the enclosing nodes, so that a
    recursive alias (``&a [*a]``) is not walked forever."""
    out[path] = (label, node.start_mark.line + 1)
    if any(node is n for n in inside):
        return
    inside += (node,)
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value
            line = key_node.start_mark.line + 1
            if isinstance(key_node, yaml.ScalarNode) and key in seen:
                dups.append(
                    Problem(
                        path + (key,),
                        f"duplicate key {key!r} (first on line {seen[key]})",
                        "YAML keeps only the last one: remove or rename one of them",
                        file=label,
                        line=line,
                    )
                )
            elif isinstance(key_node, yaml.ScalarNode):
                seen[key] = line
            _walk(value_node, path + (key,), label, out, dups, inside)
            out[path + (key,)] = (label, line)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, path + (i,), label, out, dups, inside)


def read_yaml(
    path: str | Path, prefix: tuple = (), label: str | None = None
) -> tuple[Any, LineMap]:
    """Parse a YAML file; return the data and the line of each key path.

    Raises :class:`ScenarioError` for a missing file, invalid YAML or duplicate keys, with
    the location.
    """
    data, lines, duplicates = read_yaml_with_problems(path, prefix, label)
    if duplicates:
        raise ScenarioError(duplicates, label or str(path))
    return data, lines


def read_yaml_with_problems(
    path: str | Path, prefix: tuple = (), label: str | None = None
) -> tuple[Any, LineMap, list[Problem]]:
    """Like :func:`read_yaml`, but duplicate keys come back as problems (the last value
    wins), so that they can be reported together with everything else in the file.

    Raises :class:`ScenarioError` for a missing file or invalid YAML.
    """
    path = Path(path)
    label = label or str(path)
    if not path.is_file():
        hint = (
            "check the path; it is relative to the folder you run from"
            if not prefix
            else "paths in a scenario are relative to the scenario file's folder"
        )
        what = "is a folder, not a file" if path.is_dir() else "not found"
        raise ScenarioError([Problem(prefix, f"file {what}: {path}", hint, file=label)], label)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(
            [Problem(prefix, f"cannot read file: {exc}", file=label)], label
        ) from None
    try:
        node = yaml.compose(text, Loader=_Loader)
        data = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        raise ScenarioError([_syntax_problem(exc, prefix, label)], label) from None
    lines: LineMap = {}
    duplicates: list[Problem] = []
    if node is not None:
        _walk(node, prefix, label, lines, duplicates)
    return data, lines, duplicates


def _syntax_problem(exc: yaml.YAMLError, prefix: tuple, label: str) -> Problem:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line = mark.line + 1 if mark is not None else None
    message = f"not valid YAML: {getattr(exc, 'problem', None) or exc}"
    context, context_mark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    if context:
        started = context_mark.line + 1 if context_mark is not None else None
        since = f" that starts on line {started}" if started not in (None, line) else ""
        message += f" ({context}{since})"
    return Problem(
        prefix,
        message,
        "check indentation, colons, brackets and quotes near this line",
        file=label,
        line=line,
    )
