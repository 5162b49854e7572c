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
(1, [1.5, 2.0])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from funnelsim.funnel import LOST

__all__ = ["JourneyStats", "journey_stats", "TAIL_RESOLUTION_DAYS"]

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
    tp = period_of(t[keep])
    left = np.round((bounds[tp + 1] - t[keep]) / TAIL_RESOLUTION_DAYS) * TAIL_RESOLUTION_DAYS
    left = np.minimum(np.maximum(left, 0.0), d[tp])
    frame = pd.DataFrame({"g": seg[keep], "s": stage_idx[keep], "p": tp, "left": left})
    groups = frame.value_counts(sort=False).reset_index().sort_values(["g", "s", "p", "left"])

    arrivals = np.zeros((g_n, h_n, p_n), dtype=np.int64)
    np.add.at(arrivals, (seg[first], chan_of_row[first], period_of(t[first])), 1)
    first_stage = np.zeros((g_n, s_n), dtype=np.int64)
    np.add.at(first_stage, (seg[first], stage_idx[first]), 1)
    return JourneyStats(
        stages=tuple(order),
        segments=seg_names,
        channels=chan_names,
        start=start,
        end=end,
        period_days=float(period_days),
        exposure=exposure,
        transitions=transitions,
        tails_segment=groups["g"].to_numpy(np.int64),
        tails_stage=groups["s"].to_numpy(np.int64),
        tails_period=groups["p"].to_numpy(np.int64),
        tails_left=groups["left"].to_numpy(float),
        tails_count=groups["count"].to_numpy(np.int64),
        arrivals=arrivals,
        first_stage=first_stage,
        n_events=len(log),
        n_customers=int(first.sum()),
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
