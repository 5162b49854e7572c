"""Exact discrete-time population engine (DESIGN.md §2).

Each step, every compartment makes one multinomial draw of who stays and who moves
along each of its edges (competing risks); arrivals are Poisson per channel. The cost
is O(steps · replicates · edges), independent of how many people are in the funnel.

Randomness: replicate r draws from a counter-based Philox stream whose key comes from
``SeedSequence(seed).spawn``; step t uses counter lane t. So replicate r of every
variant of a scenario sees the same random numbers at every step (common random
numbers that re-synchronise each step), and results do not depend on how many
replicates or workers there are.
"""

from __future__ import annotations

import numpy as np

from funnelsim.dynamics import CompiledModel
from funnelsim.engines.base import ProgressCallback, RawRun, aggregate_moves

__all__ = ["CountEngine", "replicate_keys", "StepStreams"]

_ARRIVALS, _MOVES = 0, 1


def replicate_keys(seed: int | None, replicates: int) -> np.ndarray:
    """``(R, 2)`` Philox keys, one per replicate, from ``SeedSequence(seed).spawn(R)``."""
    children = np.random.SeedSequence(seed).spawn(replicates)
    return np.array([child.generate_state(2, np.uint64) for child in children])


class StepStreams:
    """One reusable Generator whose stream is repositioned to (replicate key, step, lane)."""

    def __init__(self) -> None:
        self._bits = np.random.Philox(key=0)
        self.rng = np.random.Generator(self._bits)
        self._template = self._bits.state

    def at(self, key: np.ndarray, step: int, lane: int) -> np.random.Generator:
        """The generator positioned at the start of the stream for ``(key, step, lane)``."""
        state = dict(self._template)
        state["state"] = {"counter": np.array([0, lane, step, 0], dtype=np.uint64), "key": key}
        state["buffer_pos"] = 4
        self._bits.state = state
        return self.rng


class CountEngine:
    """Stochastic population engine with integer counts (the default engine)."""

    name = "counts"
    stochastic = True

    def run(
        self,
        model: CompiledModel,
        replicates: int,
        seed: int | None,
        progress: ProgressCallback | None = None,
    ) -> RawRun:
        c, m = model.dest.shape
        n_ch = len(model.channels)
        stage_matrix = model.stage_matrix()
        dest_flat = model.dest.ravel()
        real_slot = (model.slot_edge.ravel() >= 0).astype(np.int64)
        keys = replicate_keys(seed, replicates)
        streams = StepStreams()
        initial = np.rint(model.initial).astype(np.int64)
        if np.any(initial != model.initial):
            raise ValueError("the count engine needs whole numbers of people in `initial`")

        occupancy = np.empty((replicates, model.n_periods, model.funnel.n_stages), np.int64)
        flows = np.empty(
            (replicates, model.n_periods, model.funnel.n_stages, model.funnel.n_stages), np.int64
        )
        arrivals = np.empty((replicates, model.n_periods, n_ch), np.int64)
        moves = np.empty((model.n_steps, c, m), np.int64)
        step_arrivals = np.empty((model.n_steps, n_ch), np.int64)
        ends = np.empty((model.n_periods, c), np.int64)

        for r in range(replicates):
            state = initial.copy()
            for step in range(model.n_steps):
                rng = streams.at(keys[r], step, _ARRIVALS)
                new = rng.poisson(model.arrivals_at(step))
                rng = streams.at(keys[r], step, _MOVES)
                draw = rng.multinomial(state, model.probs_at(step))
                moved = draw[:, :-1]
                state = draw[:, -1] + np.bincount(
                    dest_flat, weights=(moved.ravel() * real_slot), minlength=c
                ).astype(np.int64)
                np.add.at(state, model.arrival_comp, new)
                moves[step] = moved
                step_arrivals[step] = new
                if (step + 1) % model.steps_per_period == 0:
                    ends[step // model.steps_per_period] = state
            occupancy[r] = np.rint(ends @ stage_matrix).astype(np.int64)
            flows[r] = aggregate_moves(model, moves)
            arrivals[r] = step_arrivals.reshape(model.n_periods, model.steps_per_period, -1).sum(1)
            if progress is not None:
                progress(1)
        init_stage = np.rint(initial @ stage_matrix).astype(np.int64)
        return RawRun(
            initial=np.tile(init_stage, (replicates, 1)),
            occupancy=occupancy,
            flows=flows,
            arrivals=arrivals,
        )
