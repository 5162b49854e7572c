"""Sufficient statistics of journey event logs.

An event log (one row per stage entry) is reduced to arrays whose size grows with
stages × periods, not with customers:

* ``exposure[g, i, p]`` — days customers of segment g spent in stage i during period p
  *between observed events* (a customer's time after their last event is a tail, below);
* ``transitions[g, i, j, p]`` — observed moves i → j that happened in period p
  (``i == j``: a repeat event, such as a second purchase);
* **tails** — one group per (segment, stage, period of the last event, time left in that
  period, rounded to the hour) with a count: customers silent since their last event.
  A model decides what silence means (still there, or lost unseen); with every exit
  recorded a tail is plain exposure up to the end of the data;
* ``arrivals[g, h, p]`` — customers whose first event falls in period p, by channel;
  ``first_stage[g, i]`` — where customers first appear (any stage may be first).

Periods are ``period_days`` long from midnight of the first event's day; the last one
ends at the end of the data, ``end``, and may be shorter.

>>> log = pd.DataFrame({
...     "customer_id": [1, 1, 2],
...     "timestamp": pd.to_datetime(["2026-01-01 00:00", "2026-01-02 12:00", "2026-01-02 00:00"]),
...     "stage": ["awareness", "interest", "awareness"],
... })
>>> s = journey_stats(log, ("awareness", "interest"), end=pd.Timestamp("2026-01-04"))
>>> s.exposure[0, 0].tolist()       # awareness: customer 1 for 1.5 days
[1.0, 0.5, 0.0]
>>> int(s.transitions[0, 0, 1].sum()), s.tail_time().tolist()
(1, [2.0, 1.5])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TypedDict

import numpy as np
import pandas as pd

from funnelsim.funnel import LOST

__all__ = [
    "JourneyStats",
    "journey_stats",
    "TAIL_RESOLUTION_DAYS",
    "ChunkSummary",
    "Ends",
    "JourneyOrderError",
    "summarize_chunk",
    "bin_width_ns",
    "combine",
    "finish",
]

#: tails are grouped by the time left in their period, rounded to this many days (1 hour)
TAIL_RESOLUTION_DAYS = 1.0 / 24.0
_DAY = pd.Timedelta(days=1)


@dataclass(frozen=True, eq=False)
class JourneyStats:
    """Sufficient statistics of an event log (see the module docstring for each array)."""

    stages: tuple[str, ...]  # journey order, ``lost`` last
    segments: tuple[str, ...]  # ("all",) without a segment column
    channels: tuple[str, ...]  # ("direct",) without a channel column
    start: pd.Timestamp  # start of period 0
    end: pd.Timestamp  # end of the data (τ)
    period_days: float
    exposure: np.ndarray  # (G, S, P) float days
    transitions: np.ndarray  # (G, S, S, P) int
    tails_segment: np.ndarray  # (n,) int
    tails_stage: np.ndarray  # (n,) int
    tails_period: np.ndarray  # (n,) int
    tails_left: np.ndarray  # (n,) float days to the end of the tail's period
    tails_count: np.ndarray  # (n,) int customers in the group
    arrivals: np.ndarray  # (G, H, P) int first events
    first_stage: np.ndarray  # (G, S) int
    n_events: int
    n_customers: int
    unmapped: dict[str, int] = field(default_factory=dict)  # raw names → rows skipped
    #: each customer's last event: ``customer_id, segment, stage, last_event`` (what a
    #: nowcast starts from)
    last: pd.DataFrame | None = None

    @property
    def n_periods(self) -> int:
        return self.exposure.shape[-1]

    @property
    def durations(self) -> np.ndarray:
        """Length of each period in days (the last may be shorter)."""
        return period_durations(self.start, self.end, self.period_days)

    @property
    def explicit_exits(self) -> bool:
        """True when the log records moves into ``lost`` (cancellations, churn events)."""
        return bool(self.transitions[:, :, -1].sum() > 0)

    def tail_time(self) -> np.ndarray:
        """Silent time of each tail group: from the last event to the end of the data."""
        d = self.durations
        after = np.concatenate([np.cumsum(d[::-1])[::-1][1:], [0.0]])  # Σ_{q>p} d_q
        return self.tails_left + after[self.tails_period]

    def tail_exposure(self) -> np.ndarray:
        """Tails as exposure ``(G, S, P)``: the right-censored time when every exit is
        recorded (silence then means "still there")."""
        g, s, p = self.exposure.shape
        out = np.zeros((g, s, p))
        d = self.durations
        for k in range(len(self.tails_count)):
            gi, si, pi, n = (
                self.tails_segment[k],
                self.tails_stage[k],
                self.tails_period[k],
                self.tails_count[k],
            )
            out[gi, si, pi] += n * self.tails_left[k]
            out[gi, si, pi + 1 :] += n * d[pi + 1 :]
        return out


def period_durations(start: pd.Timestamp, end: pd.Timestamp, period_days: float) -> np.ndarray:
    """Lengths in days of the periods from ``start`` to ``end`` (last one partial)."""
    span = (end - start) / _DAY
    n = max(int(np.ceil(span / period_days - 1e-12)), 1)
    d = np.full(n, float(period_days))
    d[-1] = span - period_days * (n - 1)
    return d


def journey_stats(
    log: pd.DataFrame,
    stages: Sequence[str],
    *,
    end: pd.Timestamp | None = None,
    start: pd.Timestamp | None = None,
    period_days: float = 1.0,
    segments: Sequence[str] | None = None,
    channels: Sequence[str] | None = None,
) -> JourneyStats:
    """Reduce a validated, in-memory event log to :class:`JourneyStats`.

    ``log`` has ``customer_id, timestamp, stage`` (stage names already mapped, each in
    ``stages`` or ``lost``) and optionally ``segment`` and ``channel`` (a customer's
    first row decides both). Rows of one customer must be in time order. ``end``
    defaults to the last timestamp; ``start`` to midnight of the first.
    """
    order = [s for s in stages if s != LOST] + [LOST]
    s_n = len(order)
    stage_idx = pd.Categorical(log["stage"], categories=order).codes.astype(np.int64)
    if (stage_idx < 0).any():
        bad = sorted(set(log["stage"][stage_idx < 0]))
        raise ValueError(f"stages not in the funnel: {bad}")
    ts = pd.to_datetime(log["timestamp"])
    start = ts.min().normalize() if start is None else pd.Timestamp(start)
    end = ts.max() if end is None else pd.Timestamp(end)
    t = ((ts - start) / _DAY).to_numpy(dtype=float)
    d = period_durations(start, end, period_days)
    p_n = len(d)
    bounds = np.concatenate([[0.0], np.cumsum(d)])

    cust = pd.factorize(log["customer_id"])[0]
    sort = np.argsort(cust, kind="stable")
    cust, t, stage_idx = cust[sort], t[sort], stage_idx[sort]
    first = np.r_[True, cust[1:] != cust[:-1]]
    last = np.r_[cust[1:] != cust[:-1], True]

    seg_names, seg_of_row = _labels(log, "segment", segments, "all", sort)
    chan_names, chan_of_row = _labels(log, "channel", channels, "direct", sort)
    seg = seg_of_row[first][np.cumsum(first) - 1]  # each row gets its customer's segment
    g_n, h_n = len(seg_names), len(chan_names)

    def period_of(x: np.ndarray) -> np.ndarray:
        return np.clip(np.searchsorted(bounds, x, side="right") - 1, 0, p_n - 1)

    # intervals between consecutive events of one customer
    here = np.flatnonzero(~last)
    a, b = t[here], t[here + 1]
    src, dst, gi = stage_idx[here], stage_idx[here + 1], seg[here]
    exposure = _exposure(gi, src, a, b, bounds, (g_n, s_n, p_n))
    transitions = np.zeros((g_n, s_n, s_n, p_n), dtype=np.int64)
    np.add.at(transitions, (gi, src, dst, period_of(b)), 1)

    # tails: customers silent since their last event (absorbed in lost: nothing more)
    keep = last & (stage_idx != s_n - 1)
    tails = tail_groups(seg[keep], stage_idx[keep], t[keep], period_of(t[keep]), bounds)

    arrivals = np.zeros((g_n, h_n, p_n), dtype=np.int64)
    np.add.at(arrivals, (seg[first], chan_of_row[first], period_of(t[first])), 1)
    first_stage = np.zeros((g_n, s_n), dtype=np.int64)
    np.add.at(first_stage, (seg[first], stage_idx[first]), 1)
    last_events = last_event_table(
        log["customer_id"].to_numpy()[sort][last],
        np.asarray(seg_names, dtype=object)[seg[last]],
        np.asarray(order, dtype=object)[stage_idx[last]],
        ts.to_numpy()[sort][last],
    )
    return JourneyStats(
        stages=tuple(order),
        segments=seg_names,
        channels=chan_names,
        start=start,
        end=end,
        period_days=float(period_days),
        exposure=exposure,
        transitions=transitions,
        **tails,
        arrivals=arrivals,
        first_stage=first_stage,
        n_events=len(log),
        n_customers=int(first.sum()),
        last=last_events,
    )


def last_event_table(
    ids: np.ndarray, segment: np.ndarray, stage: np.ndarray, when: np.ndarray
) -> pd.DataFrame:
    """Each customer's last event, sorted by customer id."""
    frame = pd.DataFrame(
        {
            "customer_id": ids,
            "segment": segment,
            "stage": stage,
            "last_event": pd.to_datetime(when),
        }
    )
    return frame.sort_values("customer_id", kind="stable", ignore_index=True)


class Tails(TypedDict):
    """The ``tails_*`` fields of :class:`JourneyStats`."""

    tails_segment: np.ndarray
    tails_stage: np.ndarray
    tails_period: np.ndarray
    tails_left: np.ndarray
    tails_count: np.ndarray


def tail_groups(
    segment: np.ndarray, stage: np.ndarray, t: np.ndarray, period: np.ndarray, bounds: np.ndarray
) -> Tails:
    """The ``tails_*`` fields of :class:`JourneyStats`: customers silent since their last
    event at time ``t`` (days) in ``period``, grouped by segment, stage, period and the time
    left in that period rounded to :data:`TAIL_RESOLUTION_DAYS`, with counts."""
    d = np.diff(bounds)
    left = np.round((bounds[period + 1] - t) / TAIL_RESOLUTION_DAYS) * TAIL_RESOLUTION_DAYS
    left = np.minimum(np.maximum(left, 0.0), d[period])
    frame = pd.DataFrame({"g": segment, "s": stage, "p": period, "left": left})
    groups = frame.value_counts(sort=False).reset_index().sort_values(["g", "s", "p", "left"])
    return Tails(
        tails_segment=groups["g"].to_numpy(np.int64),
        tails_stage=groups["s"].to_numpy(np.int64),
        tails_period=groups["p"].to_numpy(np.int64),
        tails_left=groups["left"].to_numpy(float),
        tails_count=groups["count"].to_numpy(np.int64),
    )


def _labels(
    log: pd.DataFrame, column: str, names: Sequence[str] | None, default: str, sort: np.ndarray
) -> tuple[tuple[str, ...], np.ndarray]:
    if column not in log:
        return (default,), np.zeros(len(log), dtype=np.int64)
    values = log[column].astype(str).to_numpy()[sort]
    cats = list(names) if names is not None else sorted(set(values))
    return tuple(cats), pd.Categorical(values, categories=cats).codes.astype(np.int64)


def _exposure(
    g: np.ndarray,
    i: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    bounds: np.ndarray,
    shape: tuple[int, int, int],
) -> np.ndarray:
    """Σ over intervals [a, b) in stage i of their overlap with each period.

    The overlap of [a, b) with period p is G_p(b) − G_p(a), G_p(x) = clip(x − b_p, 0, d_p);
    Σ_k G_p(x_k) needs only, per period, how many x fall after it and their offsets
    inside it — counts and sums that add across chunks.
    """
    g_n, s_n, p_n = shape
    d = np.diff(bounds)
    out = np.zeros(shape)
    for x, sign in ((b, 1.0), (a, -1.0)):
        p = np.clip(np.searchsorted(bounds, x, side="right") - 1, 0, p_n - 1)
        count = np.zeros(shape)
        offset = np.zeros(shape)
        np.add.at(count, (g, i, p), 1.0)
        np.add.at(offset, (g, i, p), x - bounds[p])
        after = np.cumsum(count[..., ::-1], axis=-1)[..., ::-1] - count  # x in later periods
        out += sign * (after * d + offset)
    return out


# ---------------------------------------------------------------------------------------
# Chunked reduction: a per-chunk map (summarize_chunk), an associative combine, a finish.
#
# A chunk summary keeps the additive arrays on a grid of *bins* fixed in absolute time
# (``bin_ns`` divides both a day and a period, so bins nest in periods whatever the start
# of the data turns out to be), plus each customer's first event in the chunk (heads) and
# last (tails). ``combine(A, B)`` (B follows A in the file) adds the arrays and joins A's
# tail with B's head for customers in both as one more interval. ``finish`` turns the
# bins into periods, heads into arrivals and first stages, tails into tail groups.
# ---------------------------------------------------------------------------------------

_DAY_NS = 86_400 * 10**9


def bin_width_ns(period_days: float) -> int:
    """Width of the time bins of chunk summaries: the largest span that divides a day and
    a period (1 day for whole-day periods, 1 hour for hourly ones).

    >>> bin_width_ns(7.0) // 3_600_000_000_000, bin_width_ns(1 / 24) // 60_000_000_000
    (24, 60)
    """
    import math

    period_ns = round(period_days * _DAY_NS)
    if period_ns <= 0:
        raise ValueError("period_days must be positive")
    return math.gcd(_DAY_NS, period_ns)


class JourneyOrderError(ValueError):
    """A customer's events are not in time order (``kind="order"``), or a customer's
    segment changes between rows (``kind="segment"``). Rows are file rows."""

    def __init__(self, kind: str, customer: object, row_before: int, row_after: int) -> None:
        self.kind = kind
        self.customer = customer.item() if isinstance(customer, np.generic) else customer
        self.row_before, self.row_after = int(row_before), int(row_after)
        super().__init__(f"{kind}: customer {customer!r}, rows {row_before} and {row_after}")


@dataclass(frozen=True, eq=False)
class Ends:
    """One event per customer (their first or last in a summary)."""

    ids: np.ndarray  # int64 or object (str)
    ns: np.ndarray  # int64 time, ns since the epoch (UTC, naive)
    stage: np.ndarray  # int codes into ChunkSummary.stages
    segment: np.ndarray
    channel: np.ndarray
    row: np.ndarray  # int64 file row

    def take(self, index: np.ndarray) -> Ends:
        return Ends(*(getattr(self, f)[index] for f in _END_FIELDS))

    def __len__(self) -> int:
        return len(self.ids)


_END_FIELDS = ("ids", "ns", "stage", "segment", "channel", "row")


@dataclass(frozen=True, eq=False)
class ChunkSummary:
    """What one chunk (or several combined) of an event log contributes."""

    stages: tuple[str, ...]
    segments: tuple[str, ...]
    channels: tuple[str, ...]
    bin_ns: int
    lo: int  # absolute index (ns // bin_ns) of the first bin
    count: np.ndarray  # (2, G, S, B): interval ends [0] and starts [1] per bin
    offset: np.ndarray  # (2, G, S, B): their offsets into the bin, days
    transitions: np.ndarray  # (G, S, S, B) int
    heads: Ends
    tails: Ends
    n_events: int
    unmapped: dict[str, int] = field(default_factory=dict)

    @property
    def n_bins(self) -> int:
        return self.count.shape[-1]


def summarize_chunk(
    ids: np.ndarray,
    ns: np.ndarray,
    stage: np.ndarray,
    segment: np.ndarray,
    channel: np.ndarray,
    row: np.ndarray,
    *,
    stages: Sequence[str],
    segments: Sequence[str],
    channels: Sequence[str],
    bin_ns: int,
    unmapped: dict[str, int] | None = None,
) -> ChunkSummary:
    """The map step: a :class:`ChunkSummary` of rows in file order (codes index the label
    sequences). Raises :class:`JourneyOrderError` when a customer's time goes backwards
    or their segment changes within the chunk.
    """
    g_n, s_n = len(segments), len(stages)
    ns = np.asarray(ns, dtype=np.int64)
    cust = pd.factorize(ids)[0]
    sort = np.argsort(cust, kind="stable")
    cust, ns_s, st, sg, rw = cust[sort], ns[sort], stage[sort], segment[sort], row[sort]
    n = len(cust)
    first = np.r_[True, cust[1:] != cust[:-1]] if n else np.zeros(0, bool)
    last = np.r_[cust[1:] != cust[:-1], True] if n else np.zeros(0, bool)
    here = np.flatnonzero(~last)
    for kind, bad in (
        ("order", ns_s[here + 1] < ns_s[here]),
        ("segment", sg[here + 1] != sg[here]),
    ):
        if bad.any():
            k = here[bad][np.argmin(rw[here[bad] + 1])]
            raise JourneyOrderError(kind, ids[sort][k], rw[k], rw[k + 1])
    if n:
        lo, hi = int(ns_s.min() // bin_ns), int(ns_s.max() // bin_ns)
    else:
        lo, hi = 0, -1
    b_n = hi - lo + 1
    count = np.zeros((2, g_n, s_n, b_n))
    offset = np.zeros((2, g_n, s_n, b_n))
    transitions = np.zeros((g_n, s_n, s_n, b_n), dtype=np.int64)
    _add_intervals(
        count,
        offset,
        transitions,
        lo,
        bin_ns,
        sg[here],
        st[here],
        st[here + 1],
        ns_s[here],
        ns_s[here + 1],
    )
    ends = Ends(ids, ns, stage, segment, channel, row)  # taken in file order below
    return ChunkSummary(
        tuple(stages),
        tuple(segments),
        tuple(channels),
        bin_ns,
        lo,
        count,
        offset,
        transitions,
        ends.take(sort[first]),
        ends.take(sort[last]),
        n,
        dict(unmapped or {}),
    )


def _add_intervals(
    count: np.ndarray,
    offset: np.ndarray,
    transitions: np.ndarray,
    lo: int,
    bin_ns: int,
    g: np.ndarray,
    src: np.ndarray,
    dst: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
) -> None:
    if not len(a):
        return
    shape = count.shape[1:]
    for k, x in ((0, b), (1, a)):
        absolute = x // bin_ns
        flat = np.ravel_multi_index((g, src, absolute - lo), shape)
        size = int(np.prod(shape))
        count[k] += np.bincount(flat, minlength=size).reshape(shape)
        weights = (x - absolute * bin_ns) / _DAY_NS
        offset[k] += np.bincount(flat, weights, minlength=size).reshape(shape)
    flat = np.ravel_multi_index((g, src, dst, b // bin_ns - lo), transitions.shape)
    transitions += np.bincount(flat, minlength=transitions.size).reshape(transitions.shape)


def _union(a: tuple[str, ...], b: tuple[str, ...]) -> tuple[str, ...]:
    return a + tuple(x for x in b if x not in a)


def _relabel(
    s: ChunkSummary,
    stages: tuple[str, ...],
    segments: tuple[str, ...],
    channels: tuple[str, ...],
    lo: int,
    b_n: int,
) -> ChunkSummary:
    """``s`` on larger label sets and a wider bin range (all of s's labels and bins in it)."""
    if (s.stages, s.segments, s.channels, s.lo, s.n_bins) == (stages, segments, channels, lo, b_n):
        return s
    smap = np.array([stages.index(x) for x in s.stages], dtype=np.int64)
    gmap = np.array([segments.index(x) for x in s.segments], dtype=np.int64)
    hmap = np.array([channels.index(x) for x in s.channels], dtype=np.int64)
    bins = np.arange(s.n_bins) + (s.lo - lo)
    g_n, s_n = len(segments), len(stages)
    count = np.zeros((2, g_n, s_n, b_n))
    offset = np.zeros((2, g_n, s_n, b_n))
    transitions = np.zeros((g_n, s_n, s_n, b_n), dtype=np.int64)
    count[np.ix_(np.arange(2), gmap, smap, bins)] = s.count
    offset[np.ix_(np.arange(2), gmap, smap, bins)] = s.offset
    transitions[np.ix_(gmap, smap, smap, bins)] = s.transitions

    def identity(m: np.ndarray) -> bool:
        return bool((m == np.arange(len(m))).all())

    def ends(e: Ends) -> Ends:
        if not len(e) or (identity(smap) and identity(gmap) and identity(hmap)):
            return e
        return Ends(
            e.ids,
            e.ns,
            smap[e.stage] if len(e) else e.stage,
            gmap[e.segment] if len(e) else e.segment,
            hmap[e.channel] if len(e) else e.channel,
            e.row,
        )

    return ChunkSummary(
        stages,
        segments,
        channels,
        s.bin_ns,
        lo,
        count,
        offset,
        transitions,
        ends(s.heads),
        ends(s.tails),
        s.n_events,
        s.unmapped,
    )


def _same_ids(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both id arrays as one kind (integers stay integers; mixed → text)."""
    if a.dtype.kind in "iu" and b.dtype.kind in "iu":
        return a, b
    as_text = lambda x: x.astype(str).astype(object) if x.dtype.kind in "iu" else x  # noqa: E731
    return as_text(a), as_text(b)


def combine(a: ChunkSummary, b: ChunkSummary) -> ChunkSummary:
    """The summary of A's rows followed by B's (associative: any grouping of consecutive
    chunks gives the same result).

    Raises :class:`JourneyOrderError` when a customer's first event in B is earlier than
    their last in A (or their segment differs).
    """
    if a.bin_ns != b.bin_ns:
        raise ValueError("summaries with different period grids")
    stages = _union(a.stages, b.stages)
    segments = _union(a.segments, b.segments)
    channels = _union(a.channels, b.channels)
    spans = [(s.lo, s.lo + s.n_bins) for s in (a, b) if s.n_bins]
    lo = min(x for x, _ in spans) if spans else 0
    hi = max(y for _, y in spans) if spans else 0
    a = _relabel(a, stages, segments, channels, lo, hi - lo)
    b = _relabel(b, stages, segments, channels, lo, hi - lo)
    count, offset, transitions = (
        a.count + b.count,
        a.offset + b.offset,
        a.transitions + b.transitions,
    )
    a_ids, b_ids = _same_ids(a.tails.ids, b.heads.ids)
    # hash B's heads (one chunk's customers), look up A's tails (all customers so far)
    ib = (
        pd.Index(b_ids).get_indexer(a_ids) if len(a_ids) and len(b_ids) else np.full(len(a_ids), -1)
    )
    ia = np.flatnonzero(ib >= 0)
    shared = ib[ia]
    at, bh = a.tails.take(ia), b.heads.take(shared)
    for kind, bad in (("order", bh.ns < at.ns), ("segment", bh.segment != at.segment)):
        if bad.any():
            k = np.flatnonzero(bad)[np.argmin(bh.row[bad])]
            raise JourneyOrderError(kind, bh.ids[k], at.row[k], bh.row[k])
    _add_intervals(
        count, offset, transitions, lo, a.bin_ns, at.segment, at.stage, bh.stage, at.ns, bh.ns
    )
    keep_tail = np.ones(len(a.tails), dtype=bool)
    keep_tail[ia] = False
    new_heads = np.ones(len(b.heads), dtype=bool)
    new_heads[shared] = False

    def cat(x: Ends, y: Ends) -> Ends:
        xi, yi = _same_ids(x.ids, y.ids)
        return Ends(
            xi if not len(y) else yi if not len(x) else np.concatenate([xi, yi]),
            *(np.concatenate([getattr(x, f), getattr(y, f)]) for f in _END_FIELDS[1:]),
        )

    unmapped = dict(a.unmapped)
    for k, v in b.unmapped.items():
        unmapped[k] = unmapped.get(k, 0) + v
    return ChunkSummary(
        stages,
        segments,
        channels,
        a.bin_ns,
        lo,
        count,
        offset,
        transitions,
        cat(a.heads, b.heads.take(np.flatnonzero(new_heads))),
        cat(a.tails.take(np.flatnonzero(keep_tail)), b.tails),
        a.n_events + b.n_events,
        unmapped,
    )


def finish(
    s: ChunkSummary,
    stages: Sequence[str],
    *,
    end: pd.Timestamp | None = None,
    period_days: float = 1.0,
) -> JourneyStats:
    """:class:`JourneyStats` of a whole log from its summary; equal to :func:`journey_stats`
    on the same rows (segments and channels sorted, ``stages`` in journey order, ``lost``
    last, periods from midnight of the first event's day to ``end``)."""
    if not len(s.heads):
        raise ValueError("no events")
    order = tuple([x for x in stages if x != LOST] + [LOST])
    missing = [x for x in s.stages if x not in order]
    if missing:
        raise ValueError(f"stages not in the funnel: {missing}")
    s = _relabel(s, _union(s.stages, order), s.segments, s.channels, s.lo, s.n_bins)
    perm_s = np.array([s.stages.index(x) for x in order])
    seg_names = tuple(sorted(s.segments))
    chan_names = tuple(sorted(s.channels))
    perm_g = np.array([s.segments.index(x) for x in seg_names], dtype=np.int64)
    perm_h = np.array([s.channels.index(x) for x in chan_names], dtype=np.int64)
    inv_s = np.argsort(perm_s)
    inv_g = np.argsort(perm_g)
    inv_h = np.argsort(perm_h)

    start_ns = int(s.heads.ns.min() // _DAY_NS * _DAY_NS)
    start = pd.Timestamp(start_ns)
    end_ts = pd.Timestamp(int(s.tails.ns.max())) if end is None else pd.Timestamp(end)
    d = period_durations(start, end_ts, period_days)
    p_n = len(d)
    bounds = np.concatenate([[0.0], np.cumsum(d)])
    g_n, s_n, h_n = len(seg_names), len(order), len(chan_names)

    # bins → periods (a bin at or after the end holds only events at the end: last period)
    rel_ns = (np.arange(s.n_bins, dtype=np.int64) + s.lo) * s.bin_ns - start_ns
    bin_start = rel_ns / _DAY_NS
    pb = np.clip(rel_ns // round(period_days * _DAY_NS), 0, p_n - 1)
    shift = bin_start - bounds[pb]
    onehot = np.zeros((s.n_bins, p_n))
    onehot[np.arange(s.n_bins), pb] = 1.0
    count = s.count[:, perm_g][:, :, perm_s] @ onehot
    offset = (s.offset[:, perm_g][:, :, perm_s] + s.count[:, perm_g][:, :, perm_s] * shift) @ onehot
    exposure = np.zeros((g_n, s_n, p_n))
    for k, sign in ((0, 1.0), (1, -1.0)):
        after = np.cumsum(count[k][..., ::-1], axis=-1)[..., ::-1] - count[k]
        exposure += sign * (after * d + offset[k])
    transitions = np.rint(s.transitions[perm_g][:, perm_s][:, :, perm_s] @ onehot).astype(np.int64)

    def period_of(ns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        t = (ns - start_ns) / _DAY_NS
        return t, np.clip(np.searchsorted(bounds, t, side="right") - 1, 0, p_n - 1)

    h = s.heads
    _, hp = period_of(h.ns)
    arrivals = np.zeros((g_n, h_n, p_n), dtype=np.int64)
    np.add.at(arrivals, (inv_g[h.segment], inv_h[h.channel], hp), 1)
    first_stage = np.zeros((g_n, s_n), dtype=np.int64)
    np.add.at(first_stage, (inv_g[h.segment], inv_s[h.stage]), 1)

    tl = s.tails
    stage_t = inv_s[tl.stage]
    keep = stage_t != s_n - 1
    t, tp = period_of(tl.ns[keep])
    tails = tail_groups(inv_g[tl.segment[keep]], stage_t[keep], t, tp, bounds)
    return JourneyStats(
        stages=order,
        segments=seg_names,
        channels=chan_names,
        start=start,
        end=end_ts,
        period_days=float(period_days),
        exposure=exposure,
        transitions=transitions,
        **tails,
        arrivals=arrivals,
        first_stage=first_stage,
        n_events=s.n_events,
        n_customers=len(h),
        unmapped=dict(s.unmapped),
        last=last_event_table(
            tl.ids,
            np.asarray(seg_names, dtype=object)[inv_g[tl.segment]],
            np.asarray(order, dtype=object)[inv_s[tl.stage]],
            tl.ns.astype("datetime64[ns]"),
        ),
    )
