"""Customer-journey model: stages, edges and hazard rates.

A journey is a directed graph of stages plus the stage ``lost``. Any edge may be
declared — backward edges (interest → awareness) and skips (awareness → desire)
included. An edge from a stage to itself is a *repeat event* (a repeat purchase,
another visit): it counts as an entry into the stage while the person stays put.

The canonical parameters are hazard rates per day, ``rates[i, j]``. Planners can
give the equivalent *dwell + routing* form instead, converted exactly::

    rate[i, j] = next[i][j] / dwell_days[i]

Examples
--------
>>> f = Funnel.from_routing(
...     {"awareness": 10.0, "conversion": 5.0},
...     {"awareness": {"conversion": 0.5, "lost": 0.5}, "conversion": {"lost": 1.0}},
...     goal="conversion",
... )
>>> f.stages
('awareness', 'conversion', 'lost')
>>> float(f.rate("awareness", "conversion"))
0.05
>>> f.dwell_days()["awareness"]
10.0
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources

import numpy as np
import yaml

LOST = "lost"

__all__ = [
    "LOST",
    "DWELL_DISTRIBUTIONS",
    "Dwell",
    "Capacity",
    "Funnel",
    "routing_to_rates",
    "rates_to_routing",
    "step_probabilities",
    "list_presets",
    "load_preset",
]


def routing_to_rates(dwell_days: float, next_probs: Mapping[str, float]) -> dict[str, float]:
    """Convert one stage's mean dwell and routing probabilities to hazard rates per day.

    >>> routing_to_rates(10.0, {"desire": 0.4, "lost": 0.6})
    {'desire': 0.04, 'lost': 0.06}
    """
    return {target: float(p) / float(dwell_days) for target, p in next_probs.items()}


def rates_to_routing(rates: Mapping[str, float]) -> tuple[float, dict[str, float]]:
    """Inverse of :func:`routing_to_rates`: mean dwell (days) and routing probabilities.

    >>> rates_to_routing({"desire": 0.25, "lost": 0.25})
    (2.0, {'desire': 0.5, 'lost': 0.5})
    """
    total = float(sum(rates.values()))
    if total <= 0:
        return float("inf"), {}
    return 1.0 / total, {k: float(v) / total for k, v in rates.items()}


def step_probabilities(rates: np.ndarray, dt: float) -> np.ndarray:
    """Competing-risk event probabilities over a step of ``dt`` days.

    ``rates`` has shape ``(..., k)``: the hazard of each of k possible events for one
    compartment. Returns ``(..., k + 1)``: the probability that the first event in the
    step is event j, ``rate_j / λ · (1 − exp(−λ·dt))``, and in the last slot the
    probability of no event, ``exp(−λ·dt)``.

    >>> p = step_probabilities(np.array([0.1, 0.3]), 1.0)
    >>> np.round(p, 4).tolist()
    [0.0824, 0.2473, 0.6703]
    """
    rates = np.asarray(rates, dtype=float)
    lam = rates.sum(axis=-1, keepdims=True)
    stay = np.exp(-lam * dt)
    # -expm1 keeps precision for tiny hazards; a zero total hazard moves nobody.
    moved = -np.expm1(-lam * dt)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(lam > 0, rates / np.where(lam > 0, lam, 1.0), 0.0)
    return np.concatenate([share * moved, stay], axis=-1)


#: dwell distributions a stage may declare (``shape``: gamma/weibull shape, lognormal σ)
DWELL_DISTRIBUTIONS = ("exponential", "gamma", "lognormal", "weibull", "fixed")


@dataclass(frozen=True)
class Dwell:
    """Shape of the time spent in a stage; its mean comes from the stage's rates.

    ``shape`` is the gamma or Weibull shape, or the lognormal σ (of the log). Campaigns
    act on dwell as a clock speed: the stage's base dwell elapses faster while its
    exits are lifted, which for the exponential is exactly a multiplied hazard.

    >>> Dwell("gamma", 3.0).phases
    3
    >>> Dwell("weibull", 2.0).phases is None
    True
    >>> rng = np.random.default_rng(0)
    >>> bool(abs(Dwell("lognormal", 0.5).sample(rng, 4.0, 20000).mean() - 4.0) < 0.1)
    True
    """

    dist: str = "exponential"
    shape: float | None = None

    def __post_init__(self) -> None:
        if self.dist not in DWELL_DISTRIBUTIONS:
            raise ValueError(f"unknown dwell distribution {self.dist!r}")
        if self.dist in ("gamma", "lognormal", "weibull") and not (self.shape and self.shape > 0):
            raise ValueError(f"a {self.dist} dwell needs a positive `shape`")

    @property
    def is_exponential(self) -> bool:
        return self.dist == "exponential" or (self.dist == "gamma" and self.shape == 1)

    @property
    def phases(self) -> int | None:
        """Exponential phases of the equivalent Erlang chain (None: not phase-type)."""
        if self.is_exponential:
            return 1
        if self.dist == "gamma" and float(self.shape or 0).is_integer():
            return int(self.shape or 1)
        return None

    def sample(
        self, rng: np.random.Generator, mean: float, size: int | None = None
    ) -> np.ndarray | float:
        """Draw dwell times with the given mean."""
        k = self.shape or 1.0
        if self.is_exponential:
            return rng.exponential(mean, size)
        if self.dist == "gamma":
            return rng.gamma(k, mean / k, size)
        if self.dist == "lognormal":
            return rng.lognormal(np.log(mean) - k * k / 2.0, k, size)
        if self.dist == "weibull":
            return mean / _gamma_fn(1.0 + 1.0 / k) * rng.weibull(k, size)
        return np.full(size, mean) if size is not None else np.float64(mean)


@dataclass(frozen=True)
class Capacity:
    """A stage that needs a server (a sales call, a demo): people queue for one of
    ``servers``, service takes an exponential time with mean ``service_days``, and
    whoever waits longer than ``patience_days`` is lost."""

    servers: int
    service_days: float
    patience_days: float | None = None


def _gamma_fn(x: float) -> float:
    from math import gamma

    return gamma(x)


@dataclass(frozen=True, eq=False)
class Funnel:
    """A customer journey: ordered stages (``lost`` last), hazard rates, goal and entry.

    Parameters
    ----------
    stages
        Stage names in journey order; ``lost`` is appended if absent.
    rates
        ``(S, S)`` array of hazard rates per day, ``rates[i, j]`` for moving from
        stage i to stage j; the diagonal holds repeat-event rates.
    goal
        The stage whose entries count as conversions.
    entry
        The stage new arrivals enter (default: the first stage).
    dwell
        Non-exponential dwell shapes by stage (the mean still comes from ``rates``).
    capacity
        Stages served by a limited number of servers (agent engine only).
    """

    stages: tuple[str, ...]
    rates: np.ndarray
    goal: str
    entry: str = ""
    name: str = ""
    descriptions: Mapping[str, str] = field(default_factory=dict)
    dwell: Mapping[str, Dwell] = field(default_factory=dict)
    capacity: Mapping[str, Capacity] = field(default_factory=dict)

    def __post_init__(self) -> None:
        stages = tuple(self.stages)
        if LOST not in stages:
            stages = stages + (LOST,)
        elif stages[-1] != LOST:
            stages = tuple(s for s in stages if s != LOST) + (LOST,)
        rates = np.array(self.rates, dtype=float)
        if rates.shape != (len(stages), len(stages)):
            raise ValueError(f"rates must be {len(stages)}x{len(stages)}, got {rates.shape}")
        if np.any(rates < 0) or not np.all(np.isfinite(rates)):
            raise ValueError("rates must be finite and non-negative")
        if self.goal not in stages:
            raise ValueError(f"goal {self.goal!r} is not a stage")
        rates.setflags(write=False)
        object.__setattr__(self, "stages", stages)
        object.__setattr__(self, "rates", rates)
        object.__setattr__(self, "entry", self.entry or stages[0])
        if self.entry not in stages:
            raise ValueError(f"entry {self.entry!r} is not a stage")
        for stage in list(self.dwell) + list(self.capacity):
            if stage not in stages:
                raise ValueError(f"dwell or capacity given for unknown stage {stage!r}")

    def dwell_of(self, stage: str) -> Dwell:
        """The dwell shape of ``stage`` (exponential unless declared)."""
        return self.dwell.get(stage, _EXPONENTIAL)

    @property
    def is_markov(self) -> bool:
        """True when every dwell is exponential and no stage has a capacity."""
        return all(d.is_exponential for d in self.dwell.values()) and not self.capacity

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_rates(
        cls,
        rates: Mapping[str, Mapping[str, float]],
        goal: str,
        *,
        stages: Iterable[str] | None = None,
        entry: str = "",
        name: str = "",
        dwell: Mapping[str, Dwell] | None = None,
        capacity: Mapping[str, Capacity] | None = None,
    ) -> Funnel:
        """Build from nested ``{source: {target: rate_per_day}}``."""
        order = list(stages) if stages is not None else _stage_order(rates)
        idx = {s: i for i, s in enumerate(_with_lost(order))}
        matrix = np.zeros((len(idx), len(idx)))
        for src, row in rates.items():
            for dst, value in row.items():
                matrix[idx[src], idx[dst]] = value
        return cls(
            tuple(idx),
            matrix,
            goal=goal,
            entry=entry,
            name=name,
            dwell={k: v for k, v in (dwell or {}).items() if not v.is_exponential},
            capacity=dict(capacity or {}),
        )

    @classmethod
    def from_routing(
        cls,
        dwell_days: Mapping[str, float],
        next_probs: Mapping[str, Mapping[str, float]],
        goal: str,
        *,
        entry: str = "",
        name: str = "",
    ) -> Funnel:
        """Build from mean dwell (days) and routing probabilities per stage."""
        rates = {s: routing_to_rates(dwell_days[s], next_probs.get(s, {})) for s in dwell_days}
        order = list(dwell_days)
        return cls.from_rates(
            rates, goal, stages=order + _targets_not_in(next_probs, order), entry=entry, name=name
        )

    # ------------------------------------------------------------------ queries
    @property
    def n_stages(self) -> int:
        """Number of stages, ``lost`` included."""
        return len(self.stages)

    def index(self, stage: str) -> int:
        """Position of ``stage`` in :attr:`stages`."""
        return self.stages.index(stage)

    def rate(self, source: str, target: str) -> float:
        """Hazard rate per day from ``source`` to ``target``."""
        return float(self.rates[self.index(source), self.index(target)])

    @property
    def edges(self) -> list[tuple[str, str]]:
        """Declared edges (non-zero rates), self edges (repeat events) included."""
        src, dst = np.nonzero(self.rates)
        return [(self.stages[i], self.stages[j]) for i, j in zip(src, dst)]

    def dwell_days(self) -> dict[str, float]:
        """Mean time to the next event per stage (``inf`` for stages nobody leaves)."""
        total = self.rates.sum(axis=1)
        return {s: (1.0 / float(t) if t > 0 else float("inf")) for s, t in zip(self.stages, total)}

    def routing(self) -> dict[str, dict[str, float]]:
        """Routing probabilities per stage (where the next event takes a person)."""
        out = {}
        for i, s in enumerate(self.stages):
            row = {self.stages[j]: float(r) for j, r in enumerate(self.rates[i]) if r > 0}
            out[s] = rates_to_routing(row)[1]
        return out

    def reachable_from(self, stage: str) -> set[str]:
        """Stages reachable from ``stage`` along declared edges (itself included)."""
        seen = {stage}
        frontier = [stage]
        while frontier:
            i = self.index(frontier.pop())
            for j in np.nonzero(self.rates[i])[0]:
                nxt = self.stages[j]
                if nxt not in seen:
                    seen.add(nxt)
                    frontier.append(nxt)
        return seen

    def step_matrix(self, dt: float = 1.0) -> np.ndarray:
        """``(S, S)`` occupancy transition matrix over one step of ``dt`` days.

        Row i gives where a person in stage i is at the end of the step under the
        competing-risk (one event per step) discretisation used by the engines;
        repeat events keep the person in place.
        """
        probs = step_probabilities(self.rates, dt)
        matrix = probs[:, :-1].copy()
        matrix[np.diag_indices_from(matrix)] += probs[:, -1]
        return matrix

    def to_spec(self) -> dict:
        """The funnel as a scenario ``funnel:`` mapping in rates form (exact round trip)."""
        stages = {}
        for i, s in enumerate(self.stages):
            row = {self.stages[j]: float(r) for j, r in enumerate(self.rates[i]) if r > 0}
            if s == LOST and not row:
                continue
            stages[s] = {"rates": row}
        return {"goal": self.goal, "entry": self.entry, "stages": stages}


_EXPONENTIAL = Dwell()


def _with_lost(order: list[str]) -> list[str]:
    return [s for s in order if s != LOST] + [LOST]


def _stage_order(rates: Mapping[str, Mapping[str, float]]) -> list[str]:
    order = list(rates)
    return order + _targets_not_in(rates, order)


def _targets_not_in(table: Mapping[str, Mapping[str, float]], order: list[str]) -> list[str]:
    extra: list[str] = []
    for row in table.values():
        for target in row:
            if target not in order and target not in extra and target != LOST:
                extra.append(target)
    return extra


# ---------------------------------------------------------------------- presets
def _preset_files() -> dict[str, object]:
    folder = resources.files("funnelsim") / "presets"
    return {p.name.removesuffix(".yaml"): p for p in folder.iterdir() if p.name.endswith(".yaml")}


def list_presets() -> dict[str, str]:
    """Names of the shipped journey presets and their one-line descriptions."""
    return {name: load_preset(name).get("description", "") for name in sorted(_preset_files())}


def load_preset(name: str) -> dict:
    """The raw ``funnel:`` mapping of a shipped preset (numbers are illustrative).

    Raises ``KeyError`` for an unknown name.
    """
    files = _preset_files()
    if name not in files:
        raise KeyError(name)
    return yaml.safe_load(files[name].read_text(encoding="utf-8"))  # type: ignore[attr-defined]
