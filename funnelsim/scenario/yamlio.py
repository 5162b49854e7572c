"""YAML reading that remembers the line of every key, for located error messages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from funnelsim.errors import Problem, ScenarioError

__all__ = ["read_yaml", "LineMap"]

#: path within the document → (file, 1-based line)
LineMap = dict[tuple[str | int, ...], tuple[str, int]]


class _Loader(yaml.SafeLoader):
    """Safe loader that rejects duplicate keys (a silent overwrite is a classic YAML trap)."""


def _construct_mapping(loader: _Loader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first on line {seen[key] + 1})",
                key_node.start_mark)
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _walk(node: yaml.Node, path: tuple, label: str, out: LineMap) -> None:
    out[path] = (label, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            out[path + (key,)] = (label, key_node.start_mark.line + 1)
            _walk(value_node, path + (key,), label, out)
            out[path + (key,)] = (label, key_node.start_mark.line + 1)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, path + (i,), label, out)


def read_yaml(path: str | Path, prefix: tuple = (), label: str | None = None) -> tuple[Any, LineMap]:
    """Parse a YAML file; return the data and the line of each key path.

    Raises :class:`ScenarioError` for a missing file or invalid YAML, with the location.
    """
    path = Path(path)
    label = label or str(path)
    if not path.is_file():
        hint = "check the path; it is relative to the folder you run from" if not prefix else \
            "paths in a scenario are relative to the scenario file's folder"
        what = "is a folder, not a file" if path.is_dir() else "not found"
        raise ScenarioError([Problem(prefix, f"file {what}: {path}", hint, file=label)], label)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError([Problem(prefix, f"cannot read file: {exc}", file=label)], label) from None
    try:
        node = yaml.compose(text, Loader=_Loader)
        data = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise ScenarioError(
            [Problem(prefix, f"not valid YAML: {problem}",
                     "check indentation, colons and quotes near this line", file=label, line=line)],
            label,
        ) from None
    lines: LineMap = {}
    if node is not None:
        _walk(node, prefix, label, lines)
    return data, lines
