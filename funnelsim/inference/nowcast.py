"""Where the funnel stands at the end of the data: every known customer, still there or lost.

A journey fit knows each customer's last event (stage and time). Moves between stages
are events, so a customer silent since their last event is either still in that stage
or has dropped out unseen. With the stage's exit rates ``k`` (every move out of it,
repeats included) and silent drop-off ``μ``, after ``τ`` days of silence

    P(still there) = e^{−kτ} / (e^{−kτ} + μ/k · (1 − e^{−kτ})),

per posterior draw (the journey fit's base rates of the customer's segment; campaign
lifts are left out). A log that records every exit (``drop_off="observed"``) has no
silent drop-off: a silent customer is still there. In a repeat stage fitted customer
by customer (``--heterogeneity``) each customer's own history is used instead
(:mod:`funnelsim.inference.repeat`): someone who bought often and recently is likely
still there, and expected to buy again.

Occupancy of each stage is the number of customers still there, with uncertainty from
the posterior and from who is actually still there (one draw of each customer per
posterior draw). An aggregate fit (``--kind counts``) knows no customers: its nowcast is
the latent number of people in each stage at the end of the fitted data, from the
Kalman filter that has read every count.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from funnelsim.errors import FunnelsimError
from funnelsim.funnel import LOST
from funnelsim.inference.fitted import FittedFunnel

__all__ = ["KnownCustomers", "Nowcast", "NowcastError", "nowcast"]

_DAY = pd.Timedelta(days=1)
#: customers per chunk (bounds memory at draws × chunk floats)
_CHUNK = 50_000


class NowcastError(FunnelsimError):
    """The fit cannot be nowcast customer by customer (say why and what to do)."""


@dataclass(frozen=True)
class Nowcast:
    """Per-customer probabilities and the occupancy they add up to."""

    end: pd.Timestamp
    horizon: float  # days of the expected-repeats column
    customers: pd.DataFrame  # empty for an aggregate (counts) fit
    occupancy: pd.DataFrame  # stage, last_seen, active_mean, active_p05, active_p95
    repeat_stage: str | None
    repeats_total: np.ndarray | None  # simulated repeats in the horizon, one per draw
    occupancy_draws: np.ndarray | None = None  # (draws, stages): people in each stage
    stages: tuple[str, ...] = ()  # the columns of occupancy_draws


def _active_probability(
    rates: np.ndarray, silent: bool, seg: np.ndarray, stage: np.ndarray, tau: np.ndarray
) -> np.ndarray:
    """P(still in their last stage) ``(draws, customers)`` from homogeneous rates
    ``(draws, G, S, S)``."""
    k = rates.sum(axis=3)[:, seg, stage]  # every move out, repeats included
    if not silent:
        return np.ones_like(k)
    mu = rates[:, seg, stage, -1]
    stay = np.exp(-k * tau)
    gone = np.where(k > 0, mu / np.where(k > 0, k, 1.0) * -np.expm1(-k * tau), 0.0)
    return stay / (stay + gone)


@dataclass
class KnownCustomers:
    """The known customers of a journey fit at the end of its data, for nowcasts and
    forecasts: per customer (the rows of ``fit.last_events()``) their segment and stage
    indices and days of silence ``tau``; with a customer-by-customer repeat stage, the
    index of each customer's history (``where``, -1: none) and who is in that stage
    (``mine``)."""

    last: pd.DataFrame
    seg: np.ndarray
    stage: np.ndarray
    tau: np.ndarray
    silent: bool
    model: Any = None  # the repeat stage's RepeatModel, or None
    histories: Any = None  # its RepeatHistories
    where: np.ndarray | None = None
    mine: np.ndarray | None = None

    @classmethod
    def of(cls, fit: FittedFunnel, model: Any = None) -> KnownCustomers:
        """Raises :class:`NowcastError` for a fit that keeps no customers."""
        last = fit.last_events()
        if last is None:
            raise NowcastError(
                f"this {fit.kind} fit does not keep customers' last events, so it cannot be "
                "nowcast customer by customer — refit an event log with `funnelsim fit DATA "
                "--kind journeys` (fits made before funnelsim had nowcasts lack them too)"
            )
        end = pd.Timestamp(fit.data["end"])
        stages = list(fit.stages)
        seg_of = {s: i for i, s in enumerate(fit.segments)}
        known = cls(
            last=last,
            seg=last["segment"].map(seg_of).fillna(0).to_numpy(dtype=np.int64),
            stage=last["stage"].map({s: i for i, s in enumerate(stages)}).to_numpy(np.int64),
            tau=((end - last["last_event"]) / _DAY).to_numpy(dtype=float).clip(min=0.0),
            silent=fit.idata.attrs.get("drop_off", "silent") != "observed",
        )
        h = fit.repeat_histories() if model is not None else None
        if h is not None:
            ids = pd.Index(np.asarray(h.customer_id).astype(str))
            known.model, known.histories = model, h
            known.where = ids.get_indexer(last["customer_id"].astype(str))
            known.mine = (known.where >= 0) & (known.stage == stages.index(h.stage))
        return known

    def p_active(
        self, rates: np.ndarray, rows: slice = slice(None), p_repeat: np.ndarray | None = None
    ) -> np.ndarray:
        """P(still in their last stage) ``(draws, customers in rows)`` from the journey
        rates ``(draws, G, S, S)``, the repeat stage's customers from ``p_repeat``
        (the model's P(alive), ``(draws', histories)``, cycled over the draws)."""
        stage = self.stage[rows]
        p = _active_probability(rates, self.silent, self.seg[rows], stage, self.tau[rows])
        p[:, stage == rates.shape[-1] - 1] = 0.0
        if p_repeat is not None and self.mine is not None and self.where is not None:
            mine, where = self.mine[rows], self.where[rows]
            own = p_repeat[:, where[mine]]
            p[:, mine] = own[np.arange(len(rates)) % len(own)]
        return p


def nowcast(
    fit: FittedFunnel, *, horizon: float = 90.0, draws: int = 200, seed: int | None = None
) -> Nowcast:
    """Nowcast every customer of a journey fit at the end of its data.

    ``customers`` has one row per customer: ``customer_id, segment, stage`` (where they
    were last seen), ``last_event, days_silent, p_active`` (still in that stage now)
    and, for the repeat stage of a customer-by-customer fit, ``repeats`` (so far) and
    ``expected_repeats`` in the next ``horizon`` days. ``draws`` posterior draws are
    used (evenly spaced); ``seed`` fixes the occupancy's simulated customers.

    >>> nc = nowcast(fit, horizon=90)                                # doctest: +SKIP
    >>> nc.customers.sort_values("p_active").head()                 # doctest: +SKIP
    """
    if fit.kind == "counts":
        return _nowcast_counts(fit, draws, seed)
    rng = np.random.default_rng(seed)
    all_rates = fit.rate_draws()
    pick = np.linspace(0, len(all_rates) - 1, min(draws, len(all_rates))).round().astype(int)
    rates = all_rates[pick]
    stages = list(fit.stages)
    model = fit.repeat_model(max_draws=len(pick)) if fit.repeat_info else None
    known = KnownCustomers.of(fit, model)
    last, stage, tau, end = known.last, known.stage, known.tau, pd.Timestamp(fit.data["end"])

    h = known.histories
    repeat_stage = h.stage if h is not None else None
    p_repeat = exp_repeat = None
    repeats_total = None
    if h is not None and model is not None:
        p_repeat = model.p_alive(h)  # (D', n_h)
        exp_repeat = model.expected_repeats(h, horizon).mean(axis=0)
        repeats_total = model.simulate(h, horizon, rng).sum(axis=1)

    n = len(last)
    p_active = np.zeros(n)
    occupancy = np.zeros((len(pick), len(stages)))
    for lo in range(0, n, _CHUNK):
        sl = slice(lo, lo + _CHUNK)
        p = known.p_active(rates, sl, p_repeat)
        p_active[sl] = p.mean(axis=0)
        there = rng.random(p.shape) < p
        onehot = np.zeros((p.shape[1], len(stages)))
        onehot[np.arange(p.shape[1]), stage[sl]] = 1.0
        occupancy += there @ onehot

    customers = pd.DataFrame(
        {
            "customer_id": last["customer_id"].to_numpy(),
            "segment": last["segment"].to_numpy(),
            "stage": last["stage"].to_numpy(),
            "last_event": last["last_event"].dt.strftime("%Y-%m-%d %H:%M:%S").to_numpy(),
            "days_silent": tau.round(3),
            "p_active": p_active.round(4),
        }
    )
    if len(fit.segments) == 1:
        customers = customers.drop(columns="segment")
    if h is not None and exp_repeat is not None and known.where is not None:
        where = known.where
        has = where >= 0
        reps = np.full(n, np.nan)
        reps[has] = h.x[where[has]]
        expected = np.full(n, np.nan)
        expected[has] = exp_repeat[where[has]]
        customers[f"repeats_in_{repeat_stage}"] = pd.array(reps, dtype="Int64")
        customers[f"expected_repeats_{horizon:g}d"] = expected.round(4)
    seen = np.bincount(stage, minlength=len(stages))
    rows = [
        {
            "stage": s,
            "last_seen": int(seen[i]),
            "active_mean": float(occupancy[:, i].mean()),
            "active_p05": float(np.quantile(occupancy[:, i], 0.05)),
            "active_p95": float(np.quantile(occupancy[:, i], 0.95)),
        }
        for i, s in enumerate(stages)
        if s != LOST
    ]
    return Nowcast(
        end=end,
        horizon=float(horizon),
        customers=customers,
        occupancy=pd.DataFrame(rows),
        repeat_stage=repeat_stage,
        repeats_total=repeats_total,
        occupancy_draws=occupancy,
        stages=tuple(stages),
    )


def _nowcast_counts(fit: FittedFunnel, draws: int, seed: int | None) -> Nowcast:
    """An aggregate fit: the latent people in each stage at the end of the fitted data."""
    from funnelsim.inference.count_fit import occupancy_draws

    stages, occ = occupancy_draws(fit, draws, seed)
    rows = [
        {
            "stage": s,
            "last_seen": None,
            "active_mean": float(occ[:, i].mean()),
            "active_p05": float(np.quantile(occ[:, i], 0.05)),
            "active_p95": float(np.quantile(occ[:, i], 0.95)),
        }
        for i, s in enumerate(stages)
        if s != LOST
    ]
    end = pd.Timestamp(fit.data["end"]).normalize() + _DAY  # the last period's last day, ended
    return Nowcast(
        end=end,
        horizon=0.0,
        customers=pd.DataFrame(),
        occupancy=pd.DataFrame(rows),
        repeat_stage=None,
        repeats_total=None,
        occupancy_draws=np.asarray(occ, dtype=float),
        stages=tuple(stages),
    )
