"""Exact data-augmentation Gibbs sampler for journeys with silent drop-off.

Model (one segment, no covariates, rates constant in time): each *hazard* k has a
source stage and a rate ``r_k ~ Gamma(α_k, β_k)``; a customer in stage i leaves at
the total rate ``λ_i = Σ_{k from i} r_k``. Observed hazards (moves to other stages,
repeat events, recorded exits) have counts; at most one *silent* hazard per stage
(drop-off to ``lost`` that the log never records) has none.

A customer silent for time T after entering stage i (a tail) is either still there
(probability ``e^{−λT}``) or was lost unseen (``(μ/λ)(1 − e^{−λT})``). Augmenting each
tail customer with that indicator, and the lost ones with their exit time (a
truncated exponential of rate λ on [0, T]), makes every rate conditionally
``Gamma(α + N, β + E)`` again. Each sweep is vectorised numpy over chains and tail
customers; draws are exact in the limit (no tuning, no step size).

Measured (2 cores, 20,000 customers, 6,464 tail groups, 1,000 draws × 4 chains after
1,000 sweeps of burn-in): 15.7 s, smallest bulk ESS 499 (the silent drop-off rates mix
slowest: the augmented indicators are strongly tied to them); nutpie on the same data
took 37 s warm (62 s cold) with smallest ESS 3,717. The Gibbs sampler wins on small
data (0.5 s for 1,200 customers against ~10 s for NUTS, mostly compiling) and needs
no compiler; on large data NUTS gives more effective draws per second.

>>> out = gibbs_sample(
...     sources=np.array([0, 0]), silent=np.array([False, True]),
...     counts=np.array([30, 0]), exposure=np.array([100.0]),
...     tail_stage=np.array([0]), tail_time=np.array([20.0]), tail_count=np.array([50]),
...     alpha=np.ones(2), beta=np.full(2, 5.0), draws=200, tune=100, chains=2, seed=1)
>>> out["rate"].shape, out["exposure"].shape
((2, 200, 2), (2, 200, 1))
"""

from __future__ import annotations

import numpy as np

__all__ = ["gibbs_sample"]


def gibbs_sample(
    *,
    sources: np.ndarray,
    silent: np.ndarray,
    counts: np.ndarray,
    exposure: np.ndarray,
    tail_stage: np.ndarray,
    tail_time: np.ndarray,
    tail_count: np.ndarray,
    alpha: np.ndarray,
    beta: np.ndarray,
    draws: int = 1000,
    tune: int = 500,
    chains: int = 4,
    seed: int | np.random.Generator | None = None,
) -> dict[str, np.ndarray]:
    """Posterior draws of the hazards.

    ``sources[k]``: stage index of hazard k; ``silent[k]``: True for the (at most one per
    stage) unobserved drop-off hazard; ``counts[k]``: observed moves (0 for silent ones);
    ``exposure[s]``: days in stage s between observed events; tails: stage, silent time
    and number of customers of each group. Returns ``rate`` ``(chains, draws, K)``,
    ``exposure`` ``(chains, draws, S)`` (total time at risk, augmented) and ``lost``
    ``(chains, draws, S)`` (customers lost unseen).
    """
    rng = np.random.default_rng(seed)
    k_n, s_n = len(sources), len(exposure)
    silent_of = np.full(s_n, -1)
    silent_of[sources[silent]] = np.flatnonzero(silent)
    # a stage whose only exit is silent drop-off: silence is certain whatever the rate
    # (P(no observed move) = 1), so the likelihood is flat and the posterior is the prior,
    # drawn exactly (augmenting its tails would only make a slowly mixing chain)
    observed_from = np.bincount(sources[~silent], minlength=s_n) > 0
    prior_only = silent & ~observed_from[sources]
    keep = ~prior_only[np.maximum(silent_of[tail_stage], 0)] | (silent_of[tail_stage] < 0)
    tail_stage, tail_time, tail_count = tail_stage[keep], tail_time[keep], tail_count[keep]
    # tails of stages without silent drop-off are plain right-censored exposure
    has_mu = silent_of[tail_stage] >= 0
    base_e = exposure.astype(float).copy()
    np.add.at(base_e, tail_stage[~has_mu], tail_count[~has_mu] * tail_time[~has_mu])
    g_stage, g_time, g_count = tail_stage[has_mu], tail_time[has_mu], tail_count[has_mu]
    g_n = len(g_stage)
    cust_group = np.repeat(np.arange(g_n), g_count)  # one entry per silent customer
    m_n = len(cust_group)
    c_time, c_stage = g_time[cust_group], g_stage[cust_group]
    src_mat = np.zeros((k_n, s_n))
    src_mat[np.arange(k_n), sources] = 1.0

    rate = np.tile((counts + alpha) / (beta + base_e[sources] + 1e-12), (chains, 1))  # (C, K) start
    out_rate = np.empty((chains, draws, k_n))
    out_e = np.empty((chains, draws, s_n))
    out_lost = np.zeros((chains, draws, s_n))
    offs = (np.arange(chains) * s_n)[:, None]
    for it in range(tune + draws):
        lam = rate @ src_mat  # (C, S)
        e_aug = np.broadcast_to(base_e, (chains, s_n)).copy()
        n_aug = np.broadcast_to(counts.astype(float), (chains, k_n)).copy()
        lost_s = np.zeros((chains, s_n))
        if m_n:
            mu = np.where(silent_of >= 0, rate[:, np.maximum(silent_of, 0)], 0.0)  # (C, S)
            lam_c, mu_c = lam[:, c_stage], mu[:, c_stage]  # (C, M)
            surv = np.exp(-lam_c * c_time)
            p_lost = (mu_c / lam_c) * (-np.expm1(-lam_c * c_time))
            is_lost = rng.random((chains, m_n)) * (p_lost + surv) < p_lost
            # exit time of a lost customer: exponential(λ) truncated to [0, T]
            u = rng.random((chains, m_n))
            t_exit = -np.log1p(-u * (-np.expm1(-lam_c * c_time))) / lam_c
            at_risk = np.where(is_lost, np.minimum(t_exit, c_time), c_time)
            idx = (offs + c_stage[None, :]).ravel()
            e_aug += np.bincount(idx, at_risk.ravel(), chains * s_n).reshape(chains, s_n)
            lost_s = np.bincount(idx, is_lost.ravel(), chains * s_n).astype(float)
            lost_s = lost_s.reshape(chains, s_n)
            n_aug[:, silent] += lost_s[:, sources[silent]]
        rate = rng.gamma(alpha + n_aug, 1.0 / (beta + e_aug[:, sources]))
        if prior_only.any():
            rate[:, prior_only] = rng.gamma(
                alpha[prior_only], 1.0 / beta[prior_only], (chains, int(prior_only.sum()))
            )
        if it >= tune:
            out_rate[:, it - tune] = rate
            out_e[:, it - tune] = e_aug
            out_lost[:, it - tune] = lost_s
    return {"rate": out_rate, "exposure": out_e, "lost": out_lost}
