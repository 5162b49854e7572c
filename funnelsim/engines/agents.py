"""Agent-based engine on simpy: one process per customer, in continuous time.

Same inputs and result arrays as the count engine (DESIGN.md §2), plus what only
individuals can show:

* **any dwell distribution** — exponential, gamma, lognormal, Weibull, fixed. Campaigns
  act on a stage as a clock speed ``M(t) = Σ_j share_j · lift_j(t)``: the person's base
  dwell elapses faster while the stage's exits are lifted, and the exit is chosen in
  proportion to the lifted rates at the moment of leaving. For exponential dwell this is
  exactly the count engine's multiplied hazards; for Erlang dwell it is exactly the count
  engine's phase expansion.
* **capacity**: a stage with ``capacity`` has a simpy ``Resource``; people queue for a
  server, service takes an exponential time, and whoever waits past their patience is
  lost. Queue metrics come with the result.
* **word of mouth** as contacts: each person in a referring stage makes Poisson
  contacts at ``referrals_per_day``; with a finite market a contact (or an external
  arrival) finds an unaware person with probability ``U / M``: the Bass model.
* **journeys as data**: an event log, one row per stage entry, in the schema
  ``funnelsim fit`` reads.

Replicate r uses its own stream (keys from ``SeedSequence(seed).spawn``), so results
are identical for any number of worker processes.
"""

from __future__ import annotations

import bisect
import math
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd
import simpy

from funnelsim.dynamics import CompiledModel
from funnelsim.engines.base import ProgressCallback, RawRun
from funnelsim.engines.counts import replicate_keys
from funnelsim.errors import EngineMismatch
from funnelsim.funnel import LOST

__all__ = ["AgentEngine", "QUEUE_METRICS", "journeys_frame"]

#: per replicate and capacity stage
QUEUE_METRICS = ("served", "lost_waiting", "wait_mean", "wait_p50", "wait_p90", "utilisation")
_BLOCK = 4096


class _Draws:
    """Buffered standard exponentials and uniforms (scalar numpy calls are slow)."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self._exp: list[float] = []
        self._uni: list[float] = []

    def exp(self) -> float:
        if not self._exp:
            self._exp = self.rng.standard_exponential(_BLOCK).tolist()
        return self._exp.pop()

    def uniform(self) -> float:
        if not self._uni:
            self._uni = self.rng.random(_BLOCK).tolist()
        return self._uni.pop()


@dataclass
class _Replicate:
    """Everything one replicate returns (picklable, for worker processes)."""

    initial: np.ndarray
    occupancy: np.ndarray
    flows: np.ndarray
    arrivals: np.ndarray
    entries: np.ndarray
    queues: np.ndarray  # (Q, len(QUEUE_METRICS))
    events: tuple[np.ndarray, ...] | None  # customer, time, stage, cell


def _simulate(
    model: CompiledModel,
    key: np.ndarray,
    record: bool,
    record_lost: bool,
    progress: ProgressCallback | None = None,
) -> _Replicate:
    """One replicate of the agent model (see the module docstring)."""
    rng = np.random.Generator(np.random.Philox(key=key))
    draws = _Draws(rng)
    exp, uniform = draws.exp, draws.uniform
    env = simpy.Environment()

    s = model.funnel.n_stages
    k_cells = model.n_cells
    t_n = model.n_periods
    dt = model.dt
    horizon = model.n_steps * dt
    period_days = model.steps_per_period * dt
    n_steps = model.n_steps
    lost = model.funnel.index(LOST)
    stage_of = model.stage_of.tolist()
    cell_of = model.cell_of.tolist()
    dest = model.dest.tolist()
    slot_edge = model.slot_edge.tolist()
    base = model.base_rates
    base_total = base.sum(axis=1)
    varying = model.slot_rates.shape[0] > 1
    # fast path: exponential dwell and constant rates → one exponential and one uniform
    rate_total = base_total.tolist()
    arrival_comp = model.arrival_comp.tolist()
    cum_share = [(np.cumsum(row) / row.sum()).tolist() if row.sum() > 0 else [] for row in base]
    exponential = [d.is_exponential for d in model.dwell]
    dwell = list(model.dwell)
    if varying:
        speed = (model.slot_rates.sum(axis=2) / np.where(base_total > 0, base_total, 1.0)).T
        speed_rows = speed.tolist()  # (C, n_steps)
        step_rates = model.slot_rates
    lost_of_cell = {cell_of[c]: c for c in range(len(stage_of)) if stage_of[c] == lost}
    lost_comp = [lost_of_cell[cell] for cell in cell_of]
    referral = model.referral_rate.tolist() if model.referral_rate is not None else None
    referral_cells = model.referral_cells.tolist() if model.referral_cells is not None else []
    market = model.market_size
    unaware = [model.unaware_at_start()]

    occ = [0] * s
    flows = [0] * (t_n * s * s)
    entries = [0] * (t_n * s * k_cells)
    arrivals = [0] * (t_n * k_cells)
    occupancy = np.zeros((t_n, s), dtype=np.int64)
    ev_c: list[int] = []
    ev_t: list[float] = []
    ev_s: list[int] = []
    ev_k: list[int] = []
    next_id = [0]

    capacity = {i: simpy.Resource(env, cap.servers) for i, cap in model.capacity.items()}
    q_index = {i: q for q, i in enumerate(sorted(model.capacity))}
    waits: list[list[float]] = [[] for _ in q_index]
    reneged = [0] * len(q_index)
    busy = [0.0] * len(q_index)

    def log(cid: int, comp: int, now: float) -> None:
        if record_lost or stage_of[comp] != lost:
            ev_c.append(cid)
            ev_t.append(now)
            ev_s.append(stage_of[comp])
            ev_k.append(cell_of[comp])

    def exit_time(comp: int, now: float) -> tuple[float, int]:
        """When the person leaves ``comp`` and through which slot."""
        if not varying and exponential[comp]:
            tau = exp() / rate_total[comp]
            return tau, bisect.bisect_left(cum_share[comp], uniform())
        mean = 1.0 / base_total[comp]
        need = exp() * mean if exponential[comp] else float(dwell[comp].sample(rng, mean))
        if not varying:
            return need, bisect.bisect_left(cum_share[comp], uniform())
        row = speed_rows[comp]
        t = now
        step = min(int(t / dt), n_steps - 1)
        while True:
            pace = row[step]
            end = (step + 1) * dt if step < n_steps - 1 else math.inf
            room = (end - t) * pace
            if need <= room:
                t += need / pace
                break
            need -= room
            t = end
            step += 1
        rates = step_rates[step, comp]
        return t - now, int(np.searchsorted(np.cumsum(rates) / rates.sum(), uniform()))

    def contacts(times: list[float], g_cell: int) -> simpy.events.ProcessGenerator:
        for at in times:
            if unaware[0] <= 0:
                return  # everyone in the market is aware: no contact can bring anyone
            yield env.timeout(at - env.now)
            arrive(g_cell, env.now)

    def arrive(cell: int, now: float) -> None:
        if market is not None:
            if uniform() * market >= unaware[0]:
                return  # the contact reached someone already aware
            unaware[0] -= 1
        arrivals[min(int(now / period_days), t_n - 1) * k_cells + cell] += 1
        comp = arrival_comp[cell]
        entries[(min(int(now / period_days), t_n - 1) * s + stage_of[comp]) * k_cells + cell] += 1
        env.process(customer(next_id[0], comp, now))
        next_id[0] += 1

    def customer(cid: int, comp: int, now: float) -> simpy.events.ProcessGenerator:
        occ[stage_of[comp]] += 1
        if record:
            log(cid, comp, now)
        while True:
            stage = stage_of[comp]
            if stage in capacity:
                q = q_index[stage]
                cap = model.capacity[stage]
                start = env.now
                with capacity[stage].request() as req:
                    if cap.patience_days is not None:
                        got = yield req | env.timeout(cap.patience_days)
                        served = req in got
                    else:
                        yield req
                        served = True
                    if served:
                        waits[q].append(env.now - start)
                        service = exp() * cap.service_days
                        busy[q] += max(0.0, min(env.now + service, horizon) - env.now)
                        yield env.timeout(service)
                if not served:
                    reneged[q] += 1
                    move(cid, comp, lost_comp[comp], stage * s + lost)
                    comp = lost_comp[comp]
                    continue
                slot = _route(comp, env.now)
            else:
                stays = rate_total[comp] <= 0  # nobody leaves this stage
                tau, slot = (horizon - env.now, -1) if stays else exit_time(comp, env.now)
                if referral is not None and referral[comp] > 0:
                    span = min(tau, horizon - env.now)
                    n = rng.poisson(referral[comp] * span)
                    if n:
                        times = sorted((env.now + span * rng.random(n)).tolist())
                        g = cell_of[comp] // len(model.channels)
                        env.process(contacts(times, referral_cells[g]))
                if stays:
                    return
                yield env.timeout(tau)
            target = dest[comp][slot]
            move(cid, comp, target, slot_edge[comp][slot])
            comp = target

    def _route(comp: int, now: float) -> int:
        if varying:
            rates = step_rates[min(int(now / dt), n_steps - 1), comp]
            return int(np.searchsorted(np.cumsum(rates) / rates.sum(), uniform()))
        return bisect.bisect_left(cum_share[comp], uniform())

    def move(cid: int, comp: int, target: int, edge: int) -> None:
        now = env.now
        if now >= horizon:
            return
        p = int(now / period_days)
        occ[stage_of[comp]] -= 1
        occ[stage_of[target]] += 1
        flows[p * s * s + edge] += 1
        entries[(p * s + stage_of[target]) * k_cells + cell_of[target]] += 1
        if record:
            log(cid, target, now)

    def external() -> simpy.events.ProcessGenerator:
        rates = model.external_rate
        for step in range(n_steps):
            lam = rates[step if rates.shape[0] > 1 else 0]
            total = float(lam.sum())
            if total > 0:
                n = rng.poisson(total * dt)
                if n:
                    times = np.sort(step * dt + dt * rng.random(n))
                    cells = rng.choice(len(lam), size=n, p=lam / total)
                    for at, cell in zip(times.tolist(), cells.tolist()):
                        yield env.timeout(at - env.now)
                        arrive(cell, env.now)
            yield env.timeout((step + 1) * dt - env.now)

    def recorder() -> simpy.events.ProcessGenerator:
        for p in range(t_n - 1):  # the last period ends with the run
            yield env.timeout((p + 1) * period_days - env.now)
            occupancy[p] = occ
            if progress is not None:
                progress(period_days)

    if model.initial.ndim != 1:
        raise EngineMismatch(
            "a start that differs by replicate needs a count engine (`--engine counts`)"
        )
    initial = np.rint(model.initial).astype(np.int64)
    for comp in np.nonzero(initial)[0]:
        for _ in range(initial[comp]):
            env.process(customer(next_id[0], int(comp), 0.0))
            next_id[0] += 1
    env.process(external())
    env.process(recorder())
    env.run(until=horizon)
    occupancy[t_n - 1] = occ
    if progress is not None:
        progress(period_days)

    queues = np.zeros((len(q_index), len(QUEUE_METRICS)))
    for i, q in q_index.items():
        w = np.array(waits[q])
        served = len(w)
        queues[q] = [
            served,
            reneged[q],
            w.mean() if served else np.nan,
            np.quantile(w, 0.5) if served else np.nan,
            np.quantile(w, 0.9) if served else np.nan,
            busy[q] / (model.capacity[i].servers * horizon),
        ]
    stage_init = np.bincount(model.stage_of, weights=initial, minlength=s).astype(np.int64)
    events = None
    if record:
        events = (
            np.array(ev_c, np.int64),
            np.array(ev_t),
            np.array(ev_s, np.int16),
            np.array(ev_k, np.int32),
        )
    return _Replicate(
        initial=stage_init,
        occupancy=occupancy,
        flows=np.array(flows, np.int64).reshape(t_n, s, s),
        arrivals=np.array(arrivals, np.int64).reshape(t_n, k_cells),
        entries=np.array(entries, np.int64).reshape(t_n, s, k_cells),
        queues=queues,
        events=events,
    )


def _one(args: tuple) -> _Replicate:
    return _simulate(*args)


class AgentEngine:
    """Continuous-time agent simulation (see the module docstring).

    ``workers`` > 1 spreads replicates over processes; results do not change.
    ``record=True`` keeps each replicate's event log (:meth:`journeys`).
    """

    name = "agents"
    stochastic = True
    progress_unit = "day"

    def __init__(self, workers: int = 1, record: bool = False, record_lost: bool = False) -> None:
        self.workers = max(1, int(workers))
        self.record = record
        self.record_lost = record_lost
        self.last_events: list[tuple[np.ndarray, ...]] = []

    def _replicates(
        self,
        model: CompiledModel,
        replicates: int,
        seed: int | None,
        progress: ProgressCallback | None,
        stream: int,
    ) -> list[_Replicate]:
        if model.dwell == ():
            raise ValueError("the agent engine needs a model compiled with expand_phases=False")
        keys = replicate_keys(seed, replicates, stream)
        if self.workers == 1 or replicates == 1:
            return [_simulate(model, key, self.record, self.record_lost, progress) for key in keys]
        days = model.n_steps * model.dt
        out = []
        with ProcessPoolExecutor(max_workers=self.workers) as pool:
            jobs = [(model, key, self.record, self.record_lost) for key in keys]
            for rep in pool.map(_one, jobs):
                out.append(rep)
                if progress is not None:
                    progress(days)
        return out

    def run(
        self,
        model: CompiledModel,
        replicates: int,
        seed: int | None,
        progress: ProgressCallback | None = None,
        stream: int = 0,
    ) -> RawRun:
        if model.n_parameter_sets > 1:
            raise ValueError(
                "the agent engine takes one set of rates; per-replicate rates "
                "(posterior draws) run on the counts or expected engine"
            )
        reps = self._replicates(model, replicates, seed, progress, stream)
        self.last_events = [r.events for r in reps if r.events is not None]
        return RawRun(
            initial=np.stack([r.initial for r in reps]),
            occupancy=np.stack([r.occupancy for r in reps]),
            flows=np.stack([r.flows for r in reps]),
            arrivals=np.stack([r.arrivals for r in reps]),
            entries=np.stack([r.entries for r in reps]),
            queues=np.stack([r.queues for r in reps]) if model.capacity else None,
        )


def journeys_frame(
    model: CompiledModel, events: list[tuple[np.ndarray, ...]], with_replicate: bool
) -> pd.DataFrame:
    """Event logs as one table: ``customer_id, timestamp, stage, segment, channel``
    (plus ``replicate``), one row per stage entry, in time order within a replicate."""
    start = pd.Timestamp(model.dates[0])
    h = len(model.channels)
    frames = []
    for r, (cid, t, stage, cell) in enumerate(events):
        order = np.lexsort((cid, t))
        frame = pd.DataFrame(
            {
                "customer_id": cid[order],
                "timestamp": start + pd.to_timedelta(t[order], unit="D"),
                "stage": np.array(model.stages, dtype=object)[stage[order]],
                "segment": np.array(model.segments, dtype=object)[cell[order] // h],
                "channel": np.array(model.channels, dtype=object)[cell[order] % h],
            }
        )
        if with_replicate:
            frame.insert(0, "replicate", r)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)
