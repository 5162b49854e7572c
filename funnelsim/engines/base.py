"""What every engine returns, the protocol engines follow, and the shared step loop."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from funnelsim.dynamics import CompiledModel

#: Called with the number of replicates just finished.
ProgressCallback = Callable[[int], None]
#: (step, arrivals per day by cell, unaware people or inf) → arrivals by cell in the step
ArrivalDraw = Callable[[int, np.ndarray, float], np.ndarray]
#: (step, state by compartment, step probabilities) → moves (C, m) and stayers (C,)
MoveDraw = Callable[[int, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]

__all__ = ["RawRun", "Engine", "ProgressCallback", "simulate_replicate", "stack_replicates"]


@dataclass(frozen=True)
class RawRun:
    """Arrays from one engine run of one scenario.

    R replicates, T periods, S stages, K arrival cells (segment × channel, segment-major):
    ``initial[r, s]`` people at the start; ``occupancy[r, t, s]`` people in stage s at
    the end of period t; ``flows[r, t, i, j]`` moves from stage i to j during period t
    (self moves are repeat events); ``arrivals[r, t, k]`` new people by cell;
    ``entries[r, t, s, k]`` entries into stage s (moves in and arrivals) of people of
    cell k.
    """

    initial: np.ndarray
    occupancy: np.ndarray
    flows: np.ndarray
    arrivals: np.ndarray
    entries: np.ndarray


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
        stream: int = 0,
    ) -> RawRun: ...


def simulate_replicate(
    model: CompiledModel, state: np.ndarray, draw_arrivals: ArrivalDraw, draw_moves: MoveDraw
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Run one replicate through every step; the draws decide stochastic or expected.

    Each step: arrivals are drawn from the state at the start of the step (word of
    mouth counts the referrers present then), people present move (at most one event
    each), then the arrivals join their entry stage. Returns per-period
    ``(occupancy (T, S), flows (T, S, S), arrivals (T, K), entries (T, S, K))``.
    """
    c, m = model.dest.shape
    k = model.n_cells
    dest_matrix = model.slot_dest_matrix()
    moves = np.zeros((model.n_steps, c * m), dtype=state.dtype)
    arrivals = np.zeros((model.n_steps, k), dtype=state.dtype)
    ends = np.zeros((model.n_periods, c), dtype=state.dtype)
    unaware = model.unaware_at_start()
    for step in range(model.n_steps):
        new = draw_arrivals(step, model.arrival_intensity(step, state), unaware)
        unaware -= new.sum()
        moved, stayed = draw_moves(step, state, model.probs_at(step))
        moved = moved.reshape(-1)
        state = stayed + _as(moved @ dest_matrix, state.dtype)
        np.add.at(state, model.arrival_comp, new)
        moves[step] = moved
        arrivals[step] = new
        if (step + 1) % model.steps_per_period == 0:
            ends[step // model.steps_per_period] = state
    t, spp, s = model.n_periods, model.steps_per_period, model.funnel.n_stages
    moves_p = moves.reshape(t, spp, -1).sum(axis=1)
    arrivals_p = arrivals.reshape(t, spp, -1).sum(axis=1)
    occupancy = _as(ends @ model.stage_matrix(), state.dtype)
    flows = _as(moves_p @ model.slot_edge_matrix(), state.dtype).reshape(t, s, s)
    entries = moves_p @ model.slot_entry_matrix() + arrivals_p @ model.cell_entry_matrix()
    return occupancy, flows, arrivals_p, _as(entries, state.dtype).reshape(t, s, k)


def stack_replicates(model: CompiledModel, parts: list[tuple[np.ndarray, ...]],
                     initial: np.ndarray) -> RawRun:
    """Stack per-replicate outputs of :func:`simulate_replicate` into a :class:`RawRun`."""
    occupancy, flows, arrivals, entries = (np.stack(x) for x in zip(*parts))
    init_stage = _as(initial @ model.stage_matrix(), initial.dtype)
    return RawRun(
        initial=np.tile(init_stage, (len(parts), 1)),
        occupancy=occupancy,
        flows=flows,
        arrivals=arrivals,
        entries=entries,
    )


def _as(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Float matrix products of whole counts back to integers (exact below 2**53)."""
    if np.issubdtype(dtype, np.integer):
        return np.rint(values).astype(dtype)
    return values
