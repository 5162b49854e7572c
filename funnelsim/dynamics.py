"""The resolved model every engine runs: compartments, event slots and step probabilities.

An engine never looks at YAML or at a :class:`~funnelsim.funnel.Funnel` directly: it
receives a :class:`CompiledModel`, plain numpy arrays describing

* **compartments** (one per stage today; segments, channels and dwell phases will
  multiply them) and the stage each belongs to;
* **event slots**: for compartment c, slot k leads to compartment ``dest[c, k]`` and
  counts as a move along stage edge ``slot_edge[c, k]`` (a flat ``source * S + target``
  index, ``-1`` for padding);
* **step probabilities** ``probs[step, c, k]`` from the competing-risk discretisation
  (the last slot is "no event"), and expected arrivals per step and channel.

The clock is ``dt`` days; ``steps_per_period`` steps make one reporting period.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from funnelsim.funnel import Funnel, step_probabilities

__all__ = ["CompiledModel", "compile_model", "choose_dt"]


@dataclass(frozen=True, eq=False)
class CompiledModel:
    """Arrays that define one scenario for the engines (see module docstring)."""

    funnel: Funnel
    dates: pd.DatetimeIndex  # start of each reporting period
    steps_per_period: int
    dt: float  # days per step
    stage_of: np.ndarray  # (C,) stage index of each compartment
    dest: np.ndarray  # (C, m) destination compartment of each event slot
    slot_edge: np.ndarray  # (C, m) flat stage edge of each slot, -1 = padding
    slot_rates: np.ndarray  # (n_steps | 1, C, m) hazard per day of each slot
    probs: np.ndarray  # (n_steps | 1, C, m + 1) step probabilities, last = no event
    initial: np.ndarray  # (C,) people present at the start
    channels: tuple[str, ...]
    arrival_comp: np.ndarray  # (n_channels,) compartment arrivals of each channel enter
    arrival_mean: np.ndarray  # (n_steps | 1, n_channels) expected arrivals per step

    @property
    def n_periods(self) -> int:
        return len(self.dates)

    @property
    def n_steps(self) -> int:
        return self.n_periods * self.steps_per_period

    @property
    def n_compartments(self) -> int:
        return len(self.stage_of)

    @property
    def stages(self) -> tuple[str, ...]:
        return self.funnel.stages

    def probs_at(self, step: int) -> np.ndarray:
        """Step probabilities ``(C, m + 1)`` for ``step`` (time-invariant models reuse one)."""
        return self.probs[step if self.probs.shape[0] > 1 else 0]

    def arrivals_at(self, step: int) -> np.ndarray:
        """Expected arrivals per channel during ``step``."""
        return self.arrival_mean[step if self.arrival_mean.shape[0] > 1 else 0]

    def stage_matrix(self) -> np.ndarray:
        """``(C, S)`` one-hot map from compartments to stages."""
        out = np.zeros((self.n_compartments, self.funnel.n_stages))
        out[np.arange(self.n_compartments), self.stage_of] = 1.0
        return out

    def slot_dest_matrix(self) -> np.ndarray:
        """``(C * m, C)`` one-hot map from event slots to destination compartments."""
        c, m = self.dest.shape
        out = np.zeros((c * m, c))
        out[np.arange(c * m), self.dest.ravel()] = 1.0
        out[self.slot_edge.ravel() < 0] = 0.0
        return out

    def slot_edge_matrix(self) -> np.ndarray:
        """``(C * m, S * S)`` one-hot map from event slots to stage edges."""
        c, m = self.dest.shape
        s = self.funnel.n_stages
        out = np.zeros((c * m, s * s))
        flat = self.slot_edge.ravel()
        keep = flat >= 0
        out[np.arange(c * m)[keep], flat[keep]] = 1.0
        return out


def choose_dt(funnel: Funnel, step_days: float, max_hazard_step: float = 0.5) -> float:
    """Largest clock step (a whole fraction of a day, at most one day) with λ·dt ≤ 0.5.

    The engines allow at most one event per person per step, so the step must be
    short against the shortest mean dwell. ``step_days`` is the reporting step.

    >>> f = Funnel.from_rates({"a": {"lost": 4.0}}, goal="a")
    >>> choose_dt(f, 7.0)
    0.125
    """
    max_total = float(funnel.rates.sum(axis=1).max(initial=0.0))
    per_day = max(1, int(np.ceil(max_total / max_hazard_step - 1e-12)))
    while step_days * per_day != round(step_days * per_day):
        per_day += 1
    return 1.0 / per_day


def compile_model(
    funnel: Funnel,
    *,
    start: str | pd.Timestamp,
    periods: int,
    step_days: float = 1.0,
    initial: dict[str, float] | None = None,
    arrivals_per_day: float = 0.0,
    channels: dict[str, float] | None = None,
    arrival_stage: str | None = None,
    dt: float | None = None,
) -> CompiledModel:
    """Resolve a funnel and a horizon into the arrays the engines run.

    ``channels`` maps channel name → share of arrivals (default a single channel
    ``direct``). ``dt`` defaults to :func:`choose_dt`.
    """
    dt = choose_dt(funnel, step_days) if dt is None else dt
    steps_per_period = int(round(step_days / dt))
    dates = pd.date_range(pd.Timestamp(start), periods=periods, freq=pd.Timedelta(days=step_days))
    s = funnel.n_stages

    # one compartment per stage; slots are the declared edges of each stage
    out_edges = [np.nonzero(funnel.rates[i])[0] for i in range(s)]
    m = max(1, max(len(e) for e in out_edges))
    dest = np.tile(np.arange(s)[:, None], (1, m))
    slot_edge = np.full((s, m), -1)
    slot_rates = np.zeros((s, m))
    for i, targets in enumerate(out_edges):
        dest[i, : len(targets)] = targets
        slot_edge[i, : len(targets)] = i * s + targets
        slot_rates[i, : len(targets)] = funnel.rates[i, targets]
    slot_rates = slot_rates[None]

    init = np.zeros(s)
    for stage, count in (initial or {}).items():
        init[funnel.index(stage)] += count

    shares = channels or {"direct": 1.0}
    entry = funnel.index(arrival_stage or funnel.entry)
    arrival_mean = np.array([arrivals_per_day * share * dt for share in shares.values()])[None]

    return CompiledModel(
        funnel=funnel,
        dates=dates,
        steps_per_period=steps_per_period,
        dt=dt,
        stage_of=np.arange(s),
        dest=dest,
        slot_edge=slot_edge,
        slot_rates=slot_rates,
        probs=step_probabilities(slot_rates, dt),
        initial=init,
        channels=tuple(shares),
        arrival_comp=np.full(len(shares), entry),
        arrival_mean=arrival_mean,
    )
