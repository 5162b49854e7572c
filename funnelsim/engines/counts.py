"""Exact discrete-time population engine (DESIGN.md §2).

Each step, every compartment makes one multinomial draw of who stays and who moves
along each of its edges (competing risks); arrivals are Poisson per arrival cell, or,
with a finite market, one Binomial draw from the unaware pool split multinomially
between cells. The cost is O(steps · replicates · edges), independent of how many
people are in the funnel.

Randomness: replicate r draws from a counter-based Philox stream whose key comes from
``SeedSequence(seed).spawn``; step t uses its own counter block, one lane for arrivals
and one for moves. So replicate r of every variant of a scenario sees the same random
numbers at every step (common random numbers that re-synchronise each step), and
results do not depend on how many replicates or workers there are.
"""

from __future__ import annotations

import numpy as np

from funnelsim.dynamics import CompiledModel
from funnelsim.engines.base import ProgressCallback, RawRun, simulate_replicate, stack_replicates

__all__ = ["CountEngine", "replicate_keys", "StepStreams"]

_ARRIVALS, _MOVES = 0, 1


def replicate_keys(seed: int | None, replicates: int, stream: int = 0) -> np.ndarray:
    """``(R, 2)`` Philox keys, one per replicate, from ``SeedSequence(seed).spawn``.

    ``stream`` > 0 gives an independent family of streams (used to compare common
    random numbers with independent ones).
    """
    root = np.random.SeedSequence(seed, spawn_key=(stream,) if stream else ())
    return np.array([child.generate_state(2, np.uint64) for child in root.spawn(replicates)])


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
        self._bits.state = state  # type: ignore[assignment]
        return self.rng


class CountEngine:
    """Stochastic population engine with integer counts (the default engine)."""

    name = "counts"
    stochastic = True
    progress_unit = "replicate"

    def run(
        self,
        model: CompiledModel,
        replicates: int,
        seed: int | None,
        progress: ProgressCallback | None = None,
        stream: int = 0,
    ) -> RawRun:
        initial = np.rint(model.initial).astype(np.int64)
        if np.any(initial != model.initial):
            raise ValueError("the count engine needs whole numbers of people in `initial`")
        streams = StepStreams()
        dt, market = model.dt, model.market_size
        parts = []
        for key in replicate_keys(seed, replicates, stream):

            def arrivals(step: int, lam: np.ndarray, unaware: float, key=key) -> np.ndarray:
                rng = streams.at(key, step, _ARRIVALS)
                if market is None:
                    return rng.poisson(lam * dt)
                total = lam.sum()
                if total <= 0 or unaware <= 0:
                    return np.zeros(len(lam), dtype=np.int64)
                n = rng.binomial(int(unaware), -np.expm1(-total / market * dt))
                return rng.multinomial(n, lam / total)

            def moves(step: int, state: np.ndarray, probs: np.ndarray, key=key):
                draw = streams.at(key, step, _MOVES).multinomial(state, probs)
                return draw[:, :-1], draw[:, -1]

            parts.append(simulate_replicate(model, initial.copy(), arrivals, moves))
            if progress is not None:
                progress(1)
        return stack_replicates(model, parts, initial)
