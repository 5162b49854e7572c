"""Column mappings (``--columns customer_id=user,timestamp=ts``) and stage maps (a YAML file
from raw event names to funnel stages).

>>> parse_columns("customer_id=user,timestamp=ts,stage=event")
{'customer_id': 'user', 'timestamp': 'ts', 'stage': 'event'}
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from funnelsim.errors import Problem, ScenarioError, did_you_mean
from funnelsim.scenario.yamlio import read_yaml

__all__ = [
    "EVENT_COLUMNS",
    "SNAPSHOT_COLUMNS",
    "COUNT_COLUMNS",
    "IGNORE",
    "parse_columns",
    "read_stage_map",
    "columns_hint",
]

#: canonical columns of an event log: required first, then optional
EVENT_COLUMNS: dict[str, bool] = {
    "customer_id": True,
    "timestamp": True,
    "stage": True,
    "segment": False,
    "channel": False,
}
#: canonical columns of a CRM snapshot export
SNAPSHOT_COLUMNS: dict[str, bool] = {
    "customer_id": True,
    "date": True,
    "stage": True,
    "segment": False,
}
#: canonical columns of aggregate funnel counts (``kind`` defaults to entries)
COUNT_COLUMNS: dict[str, bool] = {
    "period": True,
    "stage": True,
    "count": True,
    "kind": False,
    "segment": False,
}
_CANON = {"events": EVENT_COLUMNS, "snapshots": SNAPSHOT_COLUMNS, "counts": COUNT_COLUMNS}
_EXAMPLE = {
    "events": "customer_id=user,timestamp=ts,stage=event",
    "snapshots": "customer_id=lead,date=as_of,stage=status",
    "counts": "period=week,stage=metric,count=value",
}
#: a stage-map value that drops the row silently (as does ``null``)
IGNORE = "ignore"


def columns_hint(kind: str = "events") -> str:
    """The ``--columns`` syntax, for hints."""
    canon, example = _CANON[kind], _EXAMPLE[kind]
    return f"map your columns with --columns {example} (canonical names: {', '.join(canon)})"


def parse_columns(text: str | Mapping[str, str] | None, kind: str = "events") -> dict[str, str]:
    """Canonical column name → the user's column, from ``"canonical=theirs,..."``.

    ``kind`` is ``"events"``, ``"snapshots"`` or ``"counts"``. An unknown canonical name, a
    pair without ``=``, or a canonical name given twice raises :class:`ScenarioError`.

    >>> parse_columns("date=as_of", kind="snapshots")
    {'date': 'as_of'}
    >>> parse_columns("period=week,count=value", kind="counts")
    {'period': 'week', 'count': 'value'}
    >>> parse_columns("time=ts")
    Traceback (most recent call last):
    ...
    funnelsim.errors.ScenarioError: --columns: 1 problem
      - --columns: unknown column name 'time' (did you mean 'timestamp'?)
    """
    canon = _CANON[kind]
    if text is None:
        return {}
    pairs: list[tuple[str, str]]
    if isinstance(text, Mapping):
        pairs = [(str(k), str(v)) for k, v in text.items()]
    else:
        pairs = []
        for item in (p.strip() for p in text.split(",")):
            if not item:
                continue
            name, eq, theirs = item.partition("=")
            if not eq or not name.strip() or not theirs.strip():
                raise _columns_error(
                    f"{item!r} is not of the form canonical=column", columns_hint(kind)
                )
            pairs.append((name.strip(), theirs.strip()))
    out: dict[str, str] = {}
    for name, theirs in pairs:
        if name not in canon:
            hint = did_you_mean(name, canon)
            if theirs in canon:  # written the other way round
                hint = f"the funnelsim name comes first: did you mean {theirs}={name}?"
            raise _columns_error(f"unknown column name {name!r}", hint)
        if name in out:
            raise _columns_error(f"{name!r} is given twice", "give each column once")
        out[name] = theirs
    return out


def _columns_error(message: str, hint: str) -> ScenarioError:
    return ScenarioError([Problem(("--columns",), message, hint)], source="--columns")


def read_stage_map(path: str | Path) -> dict[str, str | None]:
    """Raw event name → stage from a YAML mapping; ``null`` or ``ignore`` → None (the
    rows are dropped silently).

    Example file::

        first_visit: awareness
        view_item: interest
        add_to_cart: desire
        purchase: conversion
        cancel: lost
        page_ping: ignore

    Bad YAML, a file that is not a mapping, or a value that is not a stage name raises
    :class:`ScenarioError` with the line.
    """
    label = str(path)
    data, lines = read_yaml(path, label=label)
    if not isinstance(data, dict) or not data:
        raise ScenarioError(
            [
                Problem(
                    (),
                    "a stage map is a mapping from raw event names to stages",
                    "write one `event_name: stage` per line, e.g. `purchase: conversion`",
                    file=label,
                    line=1,
                )
            ],
            label,
        )
    out: dict[str, str | None] = {}
    problems: list[Problem] = []
    for key, value in data.items():
        line = lines.get((key,), (label, None))[1]
        if isinstance(value, str) and value.strip() and value.strip() != IGNORE:
            out[str(key)] = value.strip()
        elif value is None or (isinstance(value, str) and value.strip() == IGNORE):
            out[str(key)] = None
        else:
            problems.append(
                Problem(
                    (str(key),),
                    f"{value!r} is not a stage name",
                    "give a stage of the funnel, or null / ignore to drop these events",
                    file=label,
                    line=line,
                )
            )
    if problems:
        raise ScenarioError(problems, label)
    return out
