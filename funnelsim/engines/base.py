"""What every engine returns, the protocol engines follow, and the shared step loop."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from funnelsim.dynamics import CompiledModel

#: Called with the work just finished: replicates, or simulated days (``progress_unit``).
ProgressCallback = Callable[[float], None]
#: (step, arrivals per day by cell, unaware people or inf) → arrivals by cell in the step
ArrivalDraw = Callable[[int, np.ndarray, float], np.ndarray]
#: (step, state by compartment, step probabilities) → moves (C, m) and stayers (C,)
MoveDraw = Callable[[int, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]

__all__ = [
    "RawRun",
    "Engine",
    "ProgressCallback",
    "simulate_replicate",
    "stack_replicates",
    "group_columns",
]


@dataclass(frozen=True)
class RawRun:
    """Arrays from one engine run of one scenario.

    R replicates, T periods, S stages, K arrival cells (segment × channel, segment-major):
    ``initial[r, s]`` people at the start; ``occupancy[r, t, s]`` people in stage s at
    the end of period t; ``flows[r, t, i, j]`` moves from stage i to j during period t
    (self moves are repeat events); ``arrivals[r, t, k]`` new people by cell;
    ``entries[r, t, s, k]`` entries into stage s (moves in and arrivals) of people of
    cell k. ``queues[r, q, metric]``: queue metrics of each capacity stage (agent
    engine only; metrics in :data:`funnelsim.engines.agents.QUEUE_METRICS`).
    """

    initial: np.ndarray
    occupancy: np.ndarray
    flows: np.ndarray
    arrivals: np.ndarray
    entries: np.ndarray
    queues: np.ndarray | None = None


class Engine(Protocol):
    """An engine turns a compiled model into a :class:`RawRun`."""

    name: str
    stochastic: bool
    progress_unit: str  # "replicate" or "day" (simulated days)

    def run(
        self,
        model: CompiledModel,
        replicates: int,
        seed: int | None,
        progress: ProgressCallback | None = None,
        stream: int = 0,
    ) -> RawRun: ...


def group_columns(values: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    """Sum the columns of ``values (T, n)`` by ``groups (n,)`` into ``(T, n_groups)``;
    columns with group −1 are dropped. Uses ``bincount`` rather than a float matrix
    product, which would wake a spinning BLAS thread for every replicate."""
    t, n = values.shape
    keep = groups >= 0
    index = (np.arange(t)[:, None] * n_groups + groups[None, keep]).ravel()
    summed = np.bincount(index, weights=values[:, keep].ravel(), minlength=t * n_groups)
    return _as(summed.reshape(t, n_groups), values.dtype)


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
    real = model.slot_edge.ravel() >= 0  # moves that enter a stage (not phase moves)
    valid = model.dest.ravel() >= 0  # not padding
    dest = model.dest.ravel()[valid]
    entry = model.arrival_comp  # one compartment per arrival cell, all distinct
    whole = np.issubdtype(state.dtype, np.integer)
    moves = np.zeros((model.n_steps, c * m), dtype=state.dtype)
    arrivals = np.zeros((model.n_steps, k), dtype=state.dtype)
    ends = np.zeros((model.n_periods, c), dtype=state.dtype)
    unaware = model.unaware_at_start()
    for step in range(model.n_steps):
        lam = model.arrival_intensity(step, state)
        if lam.any():
            new = draw_arrivals(step, lam, unaware)
            unaware -= new.sum()
        else:
            new = np.zeros(k, dtype=state.dtype)
        moved, stayed = draw_moves(step, state, model.probs_at(step))
        moved = moved.reshape(-1)
        inflow = np.bincount(dest, weights=moved[valid], minlength=c)
        state = stayed + (inflow.astype(np.int64) if whole else inflow)
        state[entry] += new
        moves[step] = moved
        arrivals[step] = new
        if (step + 1) % model.steps_per_period == 0:
            ends[step // model.steps_per_period] = state
    t, spp, s = model.n_periods, model.steps_per_period, model.funnel.n_stages
    moves_p = moves.reshape(t, spp, -1).sum(axis=1)
    arrivals_p = arrivals.reshape(t, spp, -1).sum(axis=1)
    occupancy = group_columns(ends, model.stage_of, s)
    flows = group_columns(moves_p, model.slot_edge.ravel(), s * s).reshape(t, s, s)
    flat_dest = model.dest.ravel()
    entry_group = np.where(real, model.stage_of[flat_dest] * k + model.cell_of[flat_dest], -1)
    cell_group = model.stage_of[model.arrival_comp] * k + np.arange(k)
    entries = group_columns(moves_p, entry_group, s * k) + group_columns(
        arrivals_p, cell_group, s * k
    )
    return occupancy, flows, arrivals_p, entries.reshape(t, s, k)


def stack_replicates(
    model: CompiledModel, parts: Sequence[tuple[np.ndarray, ...]], initial: np.ndarray
) -> RawRun:
    """Stack per-replicate outputs of :func:`simulate_replicate` into a :class:`RawRun`."""
    occupancy, flows, arrivals, entries = (np.stack(x) for x in zip(*parts))
    init_stage = group_columns(initial[None], model.stage_of, model.funnel.n_stages)[0]
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
