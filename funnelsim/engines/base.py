"""What every engine returns, and the protocol engines follow."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from funnelsim.dynamics import CompiledModel

#: Called with the number of (replicate, step) units just finished.
ProgressCallback = Callable[[int], None]

__all__ = ["RawRun", "Engine", "ProgressCallback", "aggregate_moves"]


@dataclass(frozen=True)
class RawRun:
    """Arrays from one engine run of one scenario (R replicates, T periods, S stages).

    ``initial[r, s]`` people at the start; ``occupancy[r, t, s]`` people in stage s at the
    end of period t; ``flows[r, t, i, j]`` moves from stage i to stage j during period t
    (self moves are repeat events); ``arrivals[r, t, c]`` new people by channel.
    """

    initial: np.ndarray
    occupancy: np.ndarray
    flows: np.ndarray
    arrivals: np.ndarray


class Engine(Protocol):
    """An engine turns a compiled model into a :class:`RawRun`."""

    name: str
    stochastic: bool

    def run(
        self,
        model: CompiledModel,
        replicates: int,
        seed: int | None,
        progress: ProgressCallback | None = None,
    ) -> RawRun: ...


def aggregate_moves(model: CompiledModel, moves: np.ndarray) -> np.ndarray:
    """Sum per-step slot moves ``(n_steps, C, m)`` into stage flows ``(T, S, S)``."""
    s = model.funnel.n_stages
    per_period = moves.reshape(model.n_periods, model.steps_per_period, -1).sum(axis=1)
    flows = per_period @ model.slot_edge_matrix()
    if np.issubdtype(moves.dtype, np.integer):
        flows = np.rint(flows).astype(np.int64)
    return flows.reshape(model.n_periods, s, s)
