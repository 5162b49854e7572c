"""Simulation engines. All take a :class:`~funnelsim.dynamics.CompiledModel` and return a
:class:`~funnelsim.engines.base.RawRun` with the same arrays.

>>> sorted(ENGINES)
['agents', 'counts', 'expected']
"""

from __future__ import annotations

from typing import Any

from funnelsim.engines.agents import AgentEngine
from funnelsim.engines.base import Engine, RawRun
from funnelsim.engines.counts import CountEngine
from funnelsim.engines.expected import ExpectedEngine

ENGINES: dict[str, type[CountEngine] | type[ExpectedEngine] | type[AgentEngine]] = {
    "counts": CountEngine,
    "expected": ExpectedEngine,
    "agents": AgentEngine,
}

__all__ = [
    "ENGINES",
    "Engine",
    "RawRun",
    "AgentEngine",
    "CountEngine",
    "ExpectedEngine",
    "get_engine",
]


def get_engine(name: str, **options: Any) -> Engine:
    """An engine instance by name (``counts``, ``expected`` or ``agents``); ``options``
    go to the engine (e.g. ``workers`` for ``agents``)."""
    try:
        engine = ENGINES[name]
    except KeyError:
        raise ValueError(
            f"unknown engine {name!r}; choose from {', '.join(sorted(ENGINES))}"
        ) from None
    return engine(**options)
