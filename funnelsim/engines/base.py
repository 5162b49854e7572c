"""What every engine returns, the protocol engines follow, and the shared step loop."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from typing import Protocol

import numpy as np

from funnelsim.dynamics import CompiledModel

#: Called with the work just finished: replicates, or simulated days (``progress_unit``).
ProgressCallback = Callable[[float], None]

__all__ = [
    "RawRun",
    "Engine",
    "ProgressCallback",
    "simulate_population",
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


def simulate_population(
    model: CompiledModel,
    stochastic: bool,
    keys: np.ndarray,
    workers: int = 1,
    progress: ProgressCallback | None = None,
) -> RawRun:
    """Run the compiled step loop (:func:`funnelsim.engines._kernels.simulate`) for
    ``len(keys)`` replicates, in chunks spread over ``workers`` threads.

    ``stochastic`` draws whole people from each replicate's counter-based streams
    (``keys (R, 2)``); otherwise the loop moves expected numbers and ``keys`` only sets
    the number of replicates (one per set of parameters). Results do not depend on
    ``workers`` or the chunking; ``progress(n)`` is called as chunks of n replicates end.
    """
    from funnelsim.engines._kernels import simulate

    if stochastic and np.any(np.rint(model.initial) != model.initial):
        raise ValueError("the count engine needs whole numbers of people in `initial`")
    initial = np.ascontiguousarray(model.initial_by_replicate(), dtype=np.float64)
    probs = np.ascontiguousarray(model.probs_by_replicate(), dtype=np.float64)
    external = np.ascontiguousarray(model.external_rate, dtype=np.float64)[None]
    r, t, s, k = len(keys), model.n_periods, model.funnel.n_stages, model.n_cells
    if probs.shape[0] not in (1, r):
        raise ValueError(f"the model has {probs.shape[0]} parameter sets for {r} replicates")
    if initial.shape[0] not in (1, r):
        raise ValueError(f"the model has {initial.shape[0]} starting states for {r} replicates")
    # one compiled signature for both engines: counts are held as float64, which is
    # exact for whole numbers below 2**53 (a billion people for a million steps)
    out = RawRun(
        initial=np.broadcast_to(
            np.stack([np.bincount(model.stage_of, weights=row, minlength=s) for row in initial]),
            (r, s),
        ).copy(),
        occupancy=np.zeros((r, t, s)),
        flows=np.zeros((r, t, s, s)),
        arrivals=np.zeros((r, t, k)),
        entries=np.zeros((r, t, s, k)),
    )
    market = model.market_size
    args = (
        np.ascontiguousarray(keys, dtype=np.uint64),
        probs,
        external,
        model.dest.astype(np.int64),
        model.slot_edge.astype(np.int64),
        model.stage_of.astype(np.int64),
        model.cell_of.astype(np.int64),
        model.arrival_comp.astype(np.int64),
        _floats(model.referral_rate, model.n_compartments),
        np.asarray(
            model.referral_cells if model.referral_cells is not None else [], dtype=np.int64
        ),
        _floats(model.segment_shares, 0),
        initial,
        float(model.unaware_at_start()) if market is not None else 0.0,
        float(market) if market is not None else 0.0,
        float(model.dt),
        int(model.steps_per_period),
        out.occupancy,
        out.flows.reshape(r, t, s * s),
        out.arrivals,
        out.entries,
    )

    def chunk(bounds: tuple[int, int]) -> int:
        simulate(stochastic, args[0], bounds[0], bounds[1], *args[1:])
        return bounds[1] - bounds[0]

    size = max(1, -(-r // max(20, 4 * workers)))
    chunks = [(a, min(a + size, r)) for a in range(0, r, size)]
    if workers > 1 and len(chunks) > 1:
        pool = ThreadPoolExecutor(workers)
        try:
            for done in pool.map(chunk, chunks):
                if progress is not None:
                    progress(done)
        except BaseException:  # Ctrl-C: drop the chunks not started, do not wait for them
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown()
    else:
        for bounds in chunks:
            done = chunk(bounds)
            if progress is not None:
                progress(done)
    if not stochastic:
        return out
    return RawRun(
        **{
            f.name: getattr(out, f.name).astype(np.int64)
            for f in fields(RawRun)
            if f.name != "queues"
        }
    )


def _floats(values: np.ndarray | None, size: int) -> np.ndarray:
    """A float64 array, zeros of ``size`` when absent."""
    return np.zeros(size) if values is None else np.asarray(values, dtype=np.float64)
