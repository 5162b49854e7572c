"""Campaign kernels: spend → adstock → saturation → pressure → rate multipliers.

Three layers (STYLE.md §3):

* plain numpy kernels — :func:`geometric_adstock`, :func:`hill_saturation`,
  :func:`window_mask`, :func:`spread_spend`;
* :class:`Campaign`, a resolved campaign on the simulation clock: daily spend,
  pressure in [0, 1) per step, the log-lift of each edge or arrival channel it moves,
  and its costs;
* the scenario schema (:mod:`funnelsim.scenario.schema`) that builds them from YAML.

A campaign with no spend figure is simply "on" (pressure 1) inside its window. With a
spend figure, pressure is ``hill(adstock(spend))``: yesterday's spend still works today
at ``carryover`` of its strength, and the effect saturates (half of its full strength
at ``half_saturation`` spend per day of adstocked spend).

    log rate[i, j](t) = log base[i, j] + Σ_c log(lift[c, i, j]) · pressure[c](t)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "geometric_adstock",
    "hill_saturation",
    "window_mask",
    "spread_spend",
    "Campaign",
    "rate_multipliers",
]


def geometric_adstock(spend: np.ndarray, carryover: float) -> np.ndarray:
    """Carry spend forward: ``x[t] = spend[t] + carryover · x[t − 1]`` along the last axis.

    >>> geometric_adstock(np.array([100.0, 0.0, 0.0, 50.0]), 0.5).tolist()
    [100.0, 50.0, 25.0, 62.5]
    """
    if not 0.0 <= carryover < 1.0:
        raise ValueError("carryover must be in [0, 1)")
    spend = np.asarray(spend, dtype=float)
    out = np.empty_like(spend)
    carried = np.zeros(spend.shape[:-1])
    for t in range(spend.shape[-1]):
        carried = spend[..., t] + carryover * carried
        out[..., t] = carried
    return out


def hill_saturation(x: np.ndarray, half_saturation: float, shape: float = 1.0) -> np.ndarray:
    """Hill curve ``x^k / (x^k + h^k)``: 0 at no spend, ½ at ``half_saturation``, → 1.

    >>> hill_saturation(np.array([0.0, 100.0, 300.0]), 100.0, 2.0).tolist()
    [0.0, 0.5, 0.9]
    """
    if half_saturation <= 0 or shape <= 0:
        raise ValueError("half_saturation and shape must be positive")
    x = np.maximum(np.asarray(x, dtype=float), 0.0)
    ratio = (x / half_saturation) ** shape
    return ratio / (1.0 + ratio)


def window_mask(n_days: int, start: int, end: int) -> np.ndarray:
    """Boolean day mask, true for days ``start ≤ d ≤ end`` (both inclusive, clipped).

    >>> window_mask(6, 2, 3).astype(int).tolist()
    [0, 0, 1, 1, 0, 0]
    """
    days = np.arange(n_days)
    return (days >= start) & (days <= end)


def spread_spend(
    n_days: int, start: int, end: int, *, total: float | None = None, per_day: float | None = None
) -> np.ndarray:
    """Daily spend over the horizon: ``total`` spread evenly over the window's days
    inside the horizon, or ``per_day`` on each of them.

    >>> spread_spend(5, 1, 2, total=300.0).tolist()
    [0.0, 150.0, 150.0, 0.0, 0.0]
    """
    mask = window_mask(n_days, start, end)
    if total is not None:
        days = max(end - start + 1, 1)
        return np.where(mask, total / days, 0.0)
    return np.where(mask, per_day or 0.0, 0.0)


@dataclass(frozen=True, eq=False)
class Campaign:
    """A campaign resolved onto the horizon's days (day 0 = horizon start).

    ``spend`` is daily media spend (``None``: no spend figure, pressure 1 in the
    window). ``edge_lifts`` maps ``(source, target)`` to the rate multiplier at full
    pressure; ``arrival_lifts`` maps channel → arrivals multiplier (``"*"``: all).
    ``segments`` restricts the effects (empty: everyone).
    """

    name: str
    start: int
    end: int
    n_days: int
    spend: np.ndarray | None = None
    carryover: float = 0.0
    half_saturation: float | None = None
    shape: float = 1.0
    edge_lifts: dict[tuple[str, str], float] = field(default_factory=dict)
    arrival_lifts: dict[str, float] = field(default_factory=dict)
    segments: tuple[str, ...] = ()
    cost_per_day: float = 0.0
    fixed_cost: float = 0.0

    def pressure(self) -> np.ndarray:
        """Pressure in [0, 1] on each day of the horizon."""
        mask = window_mask(self.n_days, self.start, self.end)
        if self.spend is None:
            return mask.astype(float)
        adstocked = geometric_adstock(self.spend, self.carryover)
        assert self.half_saturation is not None
        return hill_saturation(adstocked, self.half_saturation, self.shape)

    def daily_cost(self) -> np.ndarray:
        """Money spent on each day: media spend, running cost, and the fixed cost on day one."""
        mask = window_mask(self.n_days, self.start, self.end)
        cost = np.where(mask, self.cost_per_day, 0.0)
        if self.spend is not None:
            cost = cost + self.spend
        if 0 <= self.start < self.n_days:
            cost[self.start] += self.fixed_cost
        elif self.start < 0 < self.end:
            cost[0] += self.fixed_cost
        return cost

    def total_cost(self) -> float:
        return float(self.daily_cost().sum())


def rate_multipliers(
    campaigns: list[Campaign], day_of_step: np.ndarray
) -> tuple[dict[tuple[str, str, str | None], np.ndarray], dict[tuple[str, str | None], np.ndarray]]:
    """Log-linear multipliers per step for each targeted edge and arrival channel.

    Returns ``(edges, arrivals)``: ``edges[(source, target, segment)]`` and
    ``arrivals[(channel, segment)]`` are arrays over steps of
    ``exp(Σ_c log(lift_c) · pressure_c(day))``; ``segment`` is ``None`` for everyone.
    Edges or channels no campaign touches are absent (multiplier 1).
    """
    edges: dict[tuple[str, str, str | None], np.ndarray] = {}
    arrivals: dict[tuple[str, str | None], np.ndarray] = {}
    for campaign in campaigns:
        pressure = campaign.pressure()[day_of_step]
        for segment in campaign.segments or (None,):
            for (src, dst), lift in campaign.edge_lifts.items():
                key = (src, dst, segment)
                edges[key] = edges.get(key, 0.0) + np.log(lift) * pressure
            for channel, lift in campaign.arrival_lifts.items():
                key2 = (channel, segment)
                arrivals[key2] = arrivals.get(key2, 0.0) + np.log(lift) * pressure
    return ({k: np.exp(v) for k, v in edges.items()}, {k: np.exp(v) for k, v in arrivals.items()})
