"""The resolved model every engine runs: compartments, event slots, arrivals.

An engine never looks at YAML or at a :class:`~funnelsim.funnel.Funnel` directly: it
receives a :class:`CompiledModel`, plain numpy arrays describing

* **compartments**, one per (stage, segment, channel, dwell phase), ordered that way
  (stage-major: a campaign that changes one stage's draws shifts the random stream of
  fewer other compartments, which keeps variants' common random numbers closer).
  The channel is the one that brought the person in, carried along so conversions can
  be split by it. A stage with an Erlang (integer-shape gamma) dwell is expanded into
  that many exponential phases for the count engines (method of stages); campaigns
  speed up its whole clock;
* **event slots**: for compartment c, slot k leads to compartment ``dest[c, k]``
  (``-1``: padding) along stage edge ``slot_edge[c, k]`` (a flat ``source * S + target``
  index; ``-1`` for moves between phases of one stage, which are not stage entries);
* **step probabilities** ``probs[step, c, k]`` from the competing-risk discretisation
  of the (campaign-modified) hazard rates; the last slot is "no event";
* **arrival cells**, one per (segment, channel): an external rate per day (campaign
  boosts included) and, for the ``referral`` channel, word of mouth — every person in a
  referring stage makes ``referrals_per_day`` contacts. With a finite ``market_size`` M
  arrivals come from the unaware pool U with hazard per unaware person
  ``external_rate(t) / M + referrals_per_day · referrers(t) / M`` (the Bass model).

The clock is ``dt`` days; ``steps_per_period`` steps make one reporting period.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from funnelsim.campaigns import Campaign, rate_multipliers
from funnelsim.errors import EngineMismatch
from funnelsim.funnel import Capacity, Dwell, Funnel, step_probabilities

__all__ = [
    "CompiledModel",
    "RateClasses",
    "Segment",
    "compile_model",
    "choose_dt",
    "phases_of",
    "REFERRAL",
    "EXISTING",
]

_USE_AGENTS = " (set `engine: agents` or use --engine agents)"

#: channel of people brought in by word of mouth
REFERRAL = "referral"
#: channel of people already in the funnel at the start
EXISTING = "existing"


@dataclass(frozen=True)
class Segment:
    """A persona: its share of arrivals (and of the initial population), its own rates
    (a funnel with the same stages) and referrals per day by stage."""

    name: str
    share: float
    funnel: Funnel | None = None  # None: the scenario's funnel
    referrals_per_day: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class RateClasses:
    """Customers who differ in one stage: the stage is split into K classes (extra
    compartments), each with its own row of rates out of the stage.

    People who enter the stage join class k with probability ``weights[k]``; the
    people already in it at the start are split by ``initial[k]`` (default: the
    weights). ``rates[k, j]`` is class k's rate per day to stage j (the diagonal entry
    is its repeat rate). Customers keep their class while they stay in the stage.

    >>> f = Funnel.from_rates({"visit": {"buy": 0.2}, "buy": {"buy": 0.1, "lost": 0.01}},
    ...                       goal="buy")
    >>> rc = RateClasses("buy", [0.5, 0.5], [[0, 0.02, 0.02], [0, 0.18, 0.0]])
    >>> m = compile_model(f, start="2026-01-01", periods=1, initial={"buy": 10}, classes=rc)
    >>> m.initial[m.compartments("buy", "existing")]
    array([[5., 5.]])
    """

    stage: str
    weights: Sequence[float] | np.ndarray
    rates: Sequence[Sequence[float]] | np.ndarray
    initial: Sequence[float] | np.ndarray | None = None

    @property
    def n_classes(self) -> int:
        return len(self.weights)


@dataclass(frozen=True, eq=False)
class CompiledModel:
    """Arrays that define one scenario for the engines (see the module docstring)."""

    funnel: Funnel
    dates: pd.DatetimeIndex  # start of each reporting period
    steps_per_period: int
    dt: float  # days per step
    segments: tuple[str, ...]
    channels: tuple[str, ...]
    stage_of: np.ndarray  # (C,) stage index of each compartment
    cell_of: np.ndarray  # (C,) arrival cell (segment * H + channel) of each compartment
    dest: np.ndarray  # (C, m) destination compartment of each event slot, -1 = padding
    slot_edge: np.ndarray  # (C, m) flat stage edge of each slot, -1 = phase move or padding
    slot_rates: np.ndarray  # ([R,] n_steps | 1, C, m) hazard per day of each slot
    base_rates: np.ndarray  # (C, m) hazard per day without campaigns
    probs: np.ndarray  # ([R,] n_steps | 1, C, m + 1) step probabilities, last = no event
    initial: np.ndarray  # ([R,] C) people present at the start (one row per replicate)
    arrival_comp: np.ndarray  # (K,) compartment each arrival cell enters
    external_rate: np.ndarray  # (n_steps | 1, K) external arrivals per day (full market)
    referral_rate: np.ndarray | None = None  # (C,) contacts per day per person
    referral_cells: np.ndarray | None = None  # (G,) cell of (segment, referral)
    segment_shares: np.ndarray | None = None  # (G,) split of referral arrivals
    market_size: float | None = None
    pressure: Mapping[str, np.ndarray] = field(default_factory=dict)  # campaign → (n_days,)
    costs: Mapping[str, np.ndarray] = field(default_factory=dict)  # campaign → (n_days,)
    dwell: tuple[Dwell, ...] = ()  # (C,) dwell shape of each compartment (unexpanded models)
    capacity: Mapping[int, Capacity] = field(default_factory=dict)  # stage index → servers
    sub_of: np.ndarray | None = None  # (C,) dwell phase or rate class within the stage

    def compartments(self, stage: str, channel: str) -> np.ndarray:
        """Compartments ``(G, K)`` of ``stage`` entered through ``channel``, by segment
        and by dwell phase or rate class."""
        i, h = self.funnel.index(stage), self.channels.index(channel)
        hit = (self.stage_of == i) & (self.cell_of % len(self.channels) == h)
        return np.nonzero(hit)[0].reshape(len(self.segments), -1)  # (stage, g, h, sub) order

    def with_replicate_initial(self, initial: np.ndarray) -> CompiledModel:
        """The same model with its own people at the start for each replicate
        ``(R, C)`` (e.g. a nowcast's draws of who is still there)."""
        initial = np.asarray(initial, dtype=float)
        if initial.ndim != 2 or initial.shape[1] != self.n_compartments:
            raise ValueError(f"initial must have shape (R, {self.n_compartments})")
        return replace(self, initial=initial)

    def initial_by_replicate(self) -> np.ndarray:
        """People at the start ``(R | 1, C)``."""
        return self.initial if self.initial.ndim == 2 else self.initial[None]

    # ------------------------------------------------------------------ sizes
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
    def n_cells(self) -> int:
        return len(self.arrival_comp)

    @property
    def stages(self) -> tuple[str, ...]:
        return self.funnel.stages

    @property
    def n_parameter_sets(self) -> int:
        """Sets of rates: 1, or one per replicate (see :meth:`with_replicate_rates`)."""
        return self.probs.shape[0] if self.probs.ndim == 4 else 1

    # ------------------------------------------------------------------ per step
    def probs_at(self, step: int, replicate: int = 0) -> np.ndarray:
        """Step probabilities ``(C, m + 1)`` for ``step`` (time-invariant models reuse one)."""
        probs = self.probs_by_replicate()
        return probs[replicate if probs.shape[0] > 1 else 0, step if probs.shape[1] > 1 else 0]

    def probs_by_replicate(self) -> np.ndarray:
        """Step probabilities with a replicate axis, ``(R | 1, n_steps | 1, C, m + 1)``."""
        return self.probs if self.probs.ndim == 4 else self.probs[None]

    def with_replicate_rates(self, slot_rates: np.ndarray) -> CompiledModel:
        """The same model with one set of slot hazards per replicate (e.g. posterior
        draws): ``slot_rates (R, n_steps | 1, C, m)``; step probabilities follow.

        >>> m = compile_model(Funnel.from_rates({"a": {"lost": 0.1}}, goal="a"),
        ...                   start="2026-01-01", periods=3, initial={"a": 10})
        >>> m.with_replicate_rates(np.stack([m.slot_rates, 2 * m.slot_rates])).probs.shape
        (2, 1, 2, 2)
        """
        slot_rates = np.asarray(slot_rates, dtype=float)
        if slot_rates.ndim != 4 or slot_rates.shape[2:] != self.base_rates.shape:
            raise ValueError(
                f"slot_rates must have shape (R, steps | 1, {self.base_rates.shape[0]}, "
                f"{self.base_rates.shape[1]}); got {slot_rates.shape}"
            )
        if slot_rates.shape[1] not in (1, self.n_steps):
            raise ValueError(f"slot_rates has {slot_rates.shape[1]} steps, not 1 or {self.n_steps}")
        return replace(self, slot_rates=slot_rates, probs=step_probabilities(slot_rates, self.dt))

    def arrival_intensity(self, step: int, state: np.ndarray) -> np.ndarray:
        """Arrivals per day by cell ``(K,)`` at full market, given the state at the step start."""
        lam = self.external_rate[step if self.external_rate.shape[0] > 1 else 0]
        if self.referral_rate is None:
            return lam
        assert self.referral_cells is not None and self.segment_shares is not None
        lam = lam.copy()
        lam[self.referral_cells] += float(state @ self.referral_rate) * self.segment_shares
        return lam

    def unaware_at_start(self) -> float:
        """People in the market not yet in the funnel at the start (``inf`` without a market)."""
        if self.market_size is None:
            return float("inf")
        return self.market_size - float(self.initial_by_replicate().sum(axis=1).mean())


def choose_dt(
    funnel: Funnel | Sequence[Funnel],
    step_days: float,
    max_hazard_step: float = 0.1,
    phases: bool = True,
) -> float:
    """Largest clock step (a whole fraction of a day, at most one day) with λ·dt ≤ 0.1
    for the fastest stage (or dwell phase).

    The count engines move each person at most once per step and count a move at the
    end of its step, so each move lands about dt/2 later than in continuous time; 0.1
    keeps that well inside the sampling noise of typical forecasts (on the bike-shop
    holiday plan: −0.5% conversions at dt = 0.2 days vs −2.2% at one day).

    >>> f = Funnel.from_rates({"a": {"lost": 0.05}}, goal="a")
    >>> choose_dt(f, 7.0)
    1.0
    >>> choose_dt(Funnel.from_rates({"a": {"lost": 0.5}}, goal="a"), 1.0)
    0.2

    ``phases=False`` times each stage by its mean dwell alone (the agent engine samples
    dwell directly; its clock only sets how finely campaigns and arrivals vary).
    """
    funnels = [funnel] if isinstance(funnel, Funnel) else list(funnel)
    max_total = max(
        float(
            (f.rates.sum(axis=1) * [(phases_of(f, s) or 1) if phases else 1 for s in f.stages]).max(
                initial=0.0
            )
        )
        for f in funnels
    )
    per_day = max(1, int(np.ceil(max_total / max_hazard_step - 1e-12)))
    while step_days * per_day != round(step_days * per_day):
        per_day += 1
    return 1.0 / per_day


def phases_of(funnel: Funnel, stage: str) -> int | None:
    """Exponential phases the count engines use for ``stage`` (None: not phase-type)."""
    return funnel.dwell_of(stage).phases


#: rate × dt of the move out of a sorting compartment (P(still there) = e^-50)
_SORT = 50.0


def _split(total: float, shares: np.ndarray) -> np.ndarray:
    """Whole numbers summing to ``total`` in proportion to ``shares`` (largest remainder)."""
    raw = total * shares / shares.sum()
    base = np.floor(raw)
    rest = int(round(total - base.sum()))
    order = np.argsort(-(raw - base), kind="stable")
    base[order[:rest]] += 1
    return base


def compile_model(
    funnel: Funnel,
    *,
    start: str | pd.Timestamp,
    periods: int,
    step_days: float = 1.0,
    initial: Mapping[str, float] | None = None,
    arrivals_per_day: float = 0.0,
    channels: Mapping[str, float] | None = None,
    arrival_stage: str | None = None,
    dt: float | None = None,
    segments: Sequence[Segment] | None = None,
    campaigns: Sequence[Campaign] = (),
    referrals_per_day: Mapping[str, float] | None = None,
    market_size: float | None = None,
    expand_phases: bool = True,
    classes: RateClasses | None = None,
) -> CompiledModel:
    """Resolve a funnel, its personas, campaigns and a horizon into engine arrays.

    ``channels`` maps channel name → share of arrivals (default a single channel
    ``direct``). ``segments`` default to one segment ``all`` with the funnel's rates and
    ``referrals_per_day``. ``dt`` defaults to :func:`choose_dt` over all segments.
    ``expand_phases=False`` keeps one compartment per stage with its dwell shape in
    :attr:`CompiledModel.dwell` (for the agent engine, which samples dwell directly).
    ``classes`` splits one stage into rate classes (:class:`RateClasses`; count
    engines only).
    """
    segs = list(segments) if segments else [Segment("all", 1.0, None, referrals_per_day or {})]
    seg_funnels = [seg.funnel or funnel for seg in segs]
    s = funnel.n_stages
    if expand_phases:
        for stage in funnel.capacity:
            raise EngineMismatch(
                f"stage {stage!r} has a capacity: queues need the agents engine{_USE_AGENTS}"
            )
        for f in seg_funnels:
            for stage in f.stages:
                if phases_of(f, stage) is None:
                    dwell = f.dwell_of(stage)
                    raise EngineMismatch(
                        f"stage {stage!r} has a {dwell.dist} dwell (shape {dwell.shape:g}): the "
                        "count engines handle exponential and whole-number-shape gamma dwell; "
                        f"use the agents engine{_USE_AGENTS}"
                    )
    phases = np.array(
        [[(phases_of(f, st) if expand_phases else 1) for st in funnel.stages] for f in seg_funnels]
    )
    ci = -1  # the stage split into rate classes
    if classes is not None:
        ci = funnel.index(classes.stage)
        if not expand_phases:
            raise EngineMismatch("rate classes need a count engine (counts or expected)")
        if (phases[:, ci] != 1).any():
            raise EngineMismatch(
                f"stage {classes.stage!r} has rate classes: its dwell must be exponential"
            )
        class_rates = np.asarray(classes.rates, dtype=float)
        class_w = np.asarray(classes.weights, dtype=float)
        if class_rates.shape != (classes.n_classes, s) or (class_rates < 0).any():
            raise ValueError(f"classes.rates must be {classes.n_classes} rows of {s} rates ≥ 0")
        # arrivals into the stage itself wait one step in a sorting compartment (the
        # last), which hands them to the classes by weight
        sorting = classes.stage == (arrival_stage or funnel.entry)
        phases[:, ci] = classes.n_classes + int(sorting)
    if dt is None:
        clocks = list(seg_funnels)
        if ci >= 0:  # the fastest class sets the clock
            fastest = funnel.rates.copy()
            fastest[ci] = class_rates[class_rates.sum(axis=1).argmax()]
            clocks.append(replace(funnel, rates=fastest, dwell={}))
        dt = choose_dt(clocks, step_days, phases=expand_phases)
    steps_per_period = int(round(step_days / dt))
    n_steps = periods * steps_per_period
    dates = pd.date_range(pd.Timestamp(start), periods=periods, freq=pd.Timedelta(days=step_days))
    n_days = int(np.ceil(periods * step_days))
    day_of_step = np.minimum((np.arange(n_steps) * dt + 1e-9).astype(int), n_days - 1)

    refers = any(v > 0 for seg in segs for v in seg.referrals_per_day.values())
    shares_in = dict(channels) if channels else ({"direct": 1.0} if arrivals_per_day > 0 else {})
    initial = {k: v for k, v in (initial or {}).items() if v}
    chan = list(shares_in) + ([REFERRAL] if refers else []) + ([EXISTING] if initial else [])
    if not chan:
        chan = ["direct"]
    g_n, h_n = len(segs), len(chan)
    seg_share = np.array([seg.share for seg in segs], dtype=float)
    seg_share = seg_share / seg_share.sum()
    seg_index = {seg.name: g for g, seg in enumerate(segs)}

    # compartments: (stage, segment, channel, phase); index of phase 0 of each stage
    first: dict[tuple[int, int, int], int] = {}
    comp_list: list[tuple[int, int, int, int]] = []
    for i in range(s):
        for g in range(g_n):
            for h in range(h_n):
                first[g, h, i] = len(comp_list)
                comp_list += [(g, h, i, p) for p in range(phases[g, i])]
    c_n = len(comp_list)
    union = np.zeros((s, s), dtype=bool)
    for f in seg_funnels:
        union |= f.rates > 0
    if ci >= 0:
        union[ci] = (class_rates > 0).any(axis=0)
    out_edges = [np.nonzero(union[i])[0] for i in range(s)]
    classes_n = classes.n_classes if classes is not None else -1
    n_into = lambda j: classes_n if j == ci else 1  # noqa: E731 - slots into stage j
    m = max(1, classes_n, max(sum(n_into(int(j)) for j in e) for e in out_edges))
    dest = np.full((c_n, m), -1)
    slot_edge = np.full((c_n, m), -1)
    base_rates = np.zeros((c_n, m))
    for c, (g, h, i, p) in enumerate(comp_list):
        f, k = seg_funnels[g], phases[g, i]
        if i != ci and p < k - 1:  # next phase of the same stage, at the whole stage's pace
            dest[c, 0] = c + 1
            base_rates[c, 0] = k * f.rates[i].sum()
            continue
        if i == ci and p == classes_n:  # the sorting compartment
            dest[c, :classes_n] = np.arange(c - classes_n, c)
            base_rates[c, :classes_n] = _SORT / dt * class_w  # gone within a step
            continue
        row = class_rates[p] if i == ci else k * f.rates[i]
        slot = 0
        for j in out_edges[i].tolist():
            if j == ci and i == ci:  # a repeat keeps the class
                targets, rates = [c], [row[j]]
            elif j == ci:  # entering the stage: a class by its weight
                targets = [first[g, h, j] + q for q in range(classes_n)]
                rates = list(row[j] * class_w)
            else:
                targets, rates = [first[g, h, j]], [row[j]]
            n_t = len(targets)
            dest[c, slot : slot + n_t] = targets
            slot_edge[c, slot : slot + n_t] = i * s + j
            base_rates[c, slot : slot + n_t] = rates
            slot += n_t
    stage_of = np.array([i for _, _, i, _ in comp_list])
    sub_of = np.array([p for _, _, _, p in comp_list])
    seg_of = np.array([g for g, _, _, _ in comp_list])
    cell_of = np.array([g * h_n + h for g, h, _, _ in comp_list])

    # campaigns: log-linear multipliers per step on targeted edges and arrival channels; a
    # stage's phase moves run at its clock speed Σ_j share_j · multiplier_j
    edge_mult, arrival_mult = rate_multipliers(list(campaigns), day_of_step)
    slot_rates = base_rates[None]
    if edge_mult:
        mult = np.ones((n_steps, c_n, m))
        for (src, dst, seg_name), factor in edge_mult.items():
            i, j = funnel.index(src), funnel.index(dst)  # stage indices of the edge
            hit = (stage_of == i) & (slot_edge == i * s + j).any(axis=1)
            if seg_name is not None:
                hit &= seg_of == seg_index[seg_name]
            for c in np.nonzero(hit)[0].tolist():
                mult[:, c, slot_edge[c] == i * s + j] *= np.asarray(factor)[..., None]
        phase_moves = (slot_edge[:, 0] < 0) & (dest[:, 0] >= 0) & (stage_of != ci)
        for c in np.nonzero(phase_moves)[0].tolist():
            last = (
                first[comp_list[c][0], comp_list[c][1], stage_of[c]]
                + phases[seg_of[c], stage_of[c]]
                - 1
            )
            share = base_rates[last] / base_rates[last].sum()
            mult[:, c, 0] = mult[:, last, :] @ share
        slot_rates = base_rates[None] * mult

    init = np.zeros(c_n)
    if initial:
        h_exist = chan.index(EXISTING)
        for stage, count in initial.items():
            split = _split(float(count), seg_share)
            i = funnel.index(stage)
            for g in range(g_n):
                if classes is not None and i == ci:
                    share = np.asarray(
                        classes.initial if classes.initial is not None else class_w, dtype=float
                    )
                    share = share if share.sum() > 0 else class_w
                    lo = first[g, h_exist, i]
                    init[lo : lo + len(share)] += _split(split[g], share)
                else:
                    init[first[g, h_exist, i]] += split[g]

    entry = funnel.index(arrival_stage or funnel.entry)
    entry_sub = classes_n if entry == ci else 0  # the sorting compartment
    cells = g_n * h_n
    external = np.zeros((1, cells))
    for g in range(g_n):
        for h, name in enumerate(chan):
            if name in shares_in:
                external[0, g * h_n + h] = arrivals_per_day * shares_in[name] * seg_share[g]
    if arrival_mult:
        external = np.repeat(external, n_steps, axis=0)
        for (channel, seg_name), factor in arrival_mult.items():
            hs = range(h_n) if channel == "*" else [chan.index(channel)]
            gs = range(g_n) if seg_name is None else [seg_index[seg_name]]
            for g in gs:
                for h in hs:
                    external[:, g * h_n + h] *= factor

    referral_rate = referral_cells = None
    if refers:
        referral_rate = np.zeros(c_n)
        for g, seg in enumerate(segs):
            for stage, q in seg.referrals_per_day.items():
                referral_rate[(seg_of == g) & (stage_of == funnel.index(stage))] = q
        referral_cells = np.array([g * h_n + chan.index(REFERRAL) for g in range(g_n)])

    return CompiledModel(
        funnel=funnel,
        dates=dates,
        steps_per_period=steps_per_period,
        dt=dt,
        segments=tuple(seg.name for seg in segs),
        channels=tuple(chan),
        stage_of=stage_of,
        cell_of=cell_of,
        dest=dest,
        slot_edge=slot_edge,
        slot_rates=slot_rates,
        base_rates=base_rates,
        probs=step_probabilities(slot_rates, dt),
        initial=init,
        arrival_comp=np.array(
            [first[g, h, entry] + entry_sub for g in range(g_n) for h in range(h_n)]
        ),
        external_rate=external,
        referral_rate=referral_rate,
        referral_cells=referral_cells,
        segment_shares=seg_share,
        market_size=market_size,
        pressure={c.name: c.pressure() for c in campaigns},
        costs={c.name: c.daily_cost() for c in campaigns},
        dwell=()
        if expand_phases
        else tuple(seg_funnels[g].dwell_of(funnel.stages[i]) for g, _, i, _ in comp_list),
        capacity={funnel.index(k): v for k, v in funnel.capacity.items()},
        sub_of=sub_of,
    )
