"""Simulation engines. All take a :class:`~funnelsim.dynamics.CompiledModel` and return a
:class:`~funnelsim.engines.base.RawRun` with the same arrays.

>>> sorted(ENGINES)
['counts', 'expected']
"""

from __future__ import annotations

from funnelsim.engines.base import Engine, RawRun
from funnelsim.engines.counts import CountEngine
from funnelsim.engines.expected import ExpectedEngine

ENGINES: dict[str, type] = {"counts": CountEngine, "expected": ExpectedEngine}

__all__ = ["ENGINES", "Engine", "RawRun", "CountEngine", "ExpectedEngine", "get_engine"]


def get_engine(name: str) -> Engine:
    """An engine instance by name (``counts`` or ``expected``)."""
    try:
        return ENGINES[name]()
    except KeyError:
        raise ValueError(f"unknown engine {name!r}; choose from {', '.join(sorted(ENGINES))}") from None
