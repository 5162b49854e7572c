"""A funnel-structured media-mix model: journey rates and campaign effects from weekly
(or daily) funnel counts and spend.

The latent mean flows are the ``expected`` engine's recursion on the data's grid (see
:mod:`funnelsim.inference.flows`, whose numpy twin computes the same numbers per
posterior draw): hazards per day ``rate[i, j](t) = base[i, j] · exp(Σ_f effect_f ·
pressure_c(t))``, pressure = Hill(adstock(spend)) with learned carryover and
half-saturation, arrivals with a trend and yearly (and, for daily data, weekly) Fourier
seasonality so that a campaign timed with seasonal demand is not credited with the
season. The periods are one ``pytensor.scan``; the days inside a period are composed
in a few batched matrix products.

People move at random around those means, and the deviations persist (someone who
arrived by chance this week is still in the funnel next month). The likelihood is
therefore the Gaussian with the exact mean and covariance of random flows across all
periods (:mod:`funnelsim.inference.kalman`) plus a relative measurement noise: the
covariance is computed once per fit at the rates of a short first run, with the
measurement noise that makes the standardised errors' mean square 1, and enters the
model as a fixed whitening matrix (:func:`sample_counts`). With ``noise: {process:
false}`` the counts are instead NegativeBinomial around the mean entries or
end-of-period occupancy, independent from period to period (for small counts).

Priors (all settable, see :mod:`funnelsim.inference.count_priors`):

* ``log base[i, j] ~ Normal(log(funnel's rate), rates.sd_log = 1)``; with segments,
  each segment's log-rate deviates by ``Normal(0, σ)``, ``σ ~ HalfNormal(0.3)``;
* ``log lift ~ Normal(log(median), lift_sd_log = 0.5)``, median 1 unless given;
* half-life of carryover (days) ``~ LogNormal(log 7, 1)``; half-saturation ``~
  LogNormal(log(typical adstocked daily spend), 1)``; Hill shape fixed (default 1);
* arrivals per day at day 0 ``~ LogNormal(log(first-stage entries per day), 1)``,
  trend (change of log arrivals over the history) ``~ Normal(0, 0.5)``, Fourier
  coefficients ``~ Normal(0, 0.3)``;
* with random flows, the measurement noise (variance ``noise²·mean²`` beyond them) is
  estimated as above; without them, extra relative noise of the counts ``~
  HalfNormal(0.1)`` (NegativeBinomial ``alpha = 1/noise²``), one for all series
  (``noise: {per_series: true}``: one per series — which lets a fit explain one series
  badly by calling it noisy, and so can leave chains in different modes);
* people in each stage at the data's start: the steady state of day 0's baseline
  times ``exp(Normal(0, 0.5))`` (a funnel near, not at, its steady state).

Every prior is written non-centred (``value = centre + sd·z``, ``z ~ Normal(0, 1)``), so
the posterior sd of ``z`` is directly how much the data shrank each parameter's
uncertainty (see :func:`identifiability`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from funnelsim.errors import Problem, ScenarioError
from funnelsim.funnel import LOST, Funnel
from funnelsim.inference.count_priors import ARRIVALS, CountPriors
from funnelsim.inference.flows import BLOCK, Grid, Params, adstock, arrival_terms, compose_days

if TYPE_CHECKING:
    import pymc as pm

    from funnelsim.data.counts import CountData

__all__ = ["Design", "design_for", "build_model", "sample_counts", "KINDS"]

KINDS = ("entries", "occupancy")
_GUESS_LEVEL = 100.0  # arrivals per day when no count of the entry stage says better
_INIT_SD = 0.5  # sd of log(people at the start / steady state) per stage
#: NUTS target acceptance of count fits (0.8, the default, left divergences)
TARGET_ACCEPT = 0.95
_NOISE_FLOOR = 1e-3  # relative extra noise every count has at least


@dataclass(frozen=True)
class Design:
    """What the model needs besides parameter values: the grid, priors' centres and sds,
    and the observed series."""

    grid: Grid
    edge_names: tuple[str, ...]
    effect_names: tuple[str, ...]  # "campaign: target"
    log_rate_centre: np.ndarray  # (K,)
    rate_sd: float
    lift_centre: np.ndarray  # (F,) log
    lift_sd: np.ndarray  # (F,)
    half_life_centre: np.ndarray  # (C,) log days
    half_life_sd: np.ndarray
    half_sat_centre: np.ndarray  # (C,) log
    half_sat_sd: np.ndarray
    level_centre: np.ndarray  # (G,) log
    level_sd: float
    trend_sd: float
    seasonal_sd: float
    noise_sd: float
    noise_per_series: bool
    process_noise: bool  # random flows (True) or mean flows with NB counts
    series: tuple[tuple[str, str], ...]
    series_index: np.ndarray  # (N,) stage + S·kind into [entries, occupancy]
    counts: np.ndarray  # (G, T, N)
    whiten: np.ndarray | None = None  # (G, T·N, T·N) W of the random flows' covariance
    noise_level: float = 0.0  # measurement noise estimated with it

    def to_json(self) -> str:
        g = self.grid
        return json.dumps(
            {
                "stages": list(g.stages),
                "entry": g.entry,
                "edges": [list(e) for e in g.edges],
                "period_days": g.period_days,
                "steps_per_day": g.steps_per_day,
                "campaigns": list(g.campaigns),
                "spend_offset": g.spend_offset,
                "effect_campaign": g.effect_campaign.tolist(),
                "effect_edge": g.effect_edge.tolist(),
                "shape": g.shape.tolist(),
                "yearly_terms": g.yearly_terms,
                "weekly_terms": g.weekly_terms,
                "trend_days": g.trend_days,
                "segments": list(g.segments),
                "series": [list(s) for s in self.series],
                "trend_sd": self.trend_sd,
                "noise_per_series": self.noise_per_series,
                "process_noise": self.process_noise,
                "seasonal_sd": self.seasonal_sd,
                "edge_names": list(self.edge_names),
                "effect_names": list(self.effect_names),
            }
        )


def _problem(where: str, message: str, hint: str = "", file: str | None = None) -> ScenarioError:
    return ScenarioError([Problem(tuple(where.split(".")), message, hint, file=file)], file)


def design_for(
    data: CountData, funnel: Funnel, priors: CountPriors | None = None, *, priors_file: str = ""
) -> Design:
    """The model's design for ``data`` with the structure (and prior centres) of ``funnel``."""
    priors = priors or CountPriors()
    stages = tuple(s for s in funnel.stages if s != LOST)
    if tuple(data.stages) != stages:
        raise _problem(
            "funnel",
            f"the counts were read for stages {list(data.stages)}, the funnel has {list(stages)}",
        )
    s_n = len(stages)
    idx = {s: i for i, s in enumerate(stages)} | {LOST: s_n}
    edges = tuple((idx[a], idx[b]) for a, b in funnel.edges if a != LOST)
    names = tuple(f"{a} -> {b}" for a, b in funnel.edges if a != LOST)
    centre = np.log([funnel.rate(a, b) for a, b in funnel.edges if a != LOST])
    from funnelsim.dynamics import choose_dt

    steps_per_day = int(round(1.0 / choose_dt(funnel, 1.0)))
    campaigns = tuple(data.campaigns)
    declared = set(priors.campaigns)
    effect_c, effect_k, fx_names, fx_centre, fx_sd = [], [], [], [], []
    forward = [
        k
        for k, (i, j) in enumerate(edges)
        if j < s_n and j > i  # forward moves, no lost
    ]
    for c, name in enumerate(campaigns):
        spec = priors.campaigns.get(name)
        given = spec.targets() if spec is not None else None
        targets: dict[str, float | None] = {ARRIVALS: None}
        targets |= {names[k]: None for k in forward}
        if given is not None:
            targets = given
        sd = spec.lift_sd_log if spec is not None else 0.5
        for target, median in targets.items():
            if target != ARRIVALS and target not in names:
                raise _problem(
                    f"campaigns.{name}.moves",
                    f"{target!r} is not an edge of the funnel",
                    f"edges: {', '.join(names)}",
                    priors_file or None,
                )
            effect_c.append(c)
            effect_k.append(-1 if target == ARRIVALS else names.index(target))
            fx_names.append(f"{name}: {target}")
            fx_centre.append(np.log(median or 1.0))
            fx_sd.append(sd)
    unknown = sorted(declared - set(campaigns))
    if unknown:
        raise _problem(
            f"campaigns.{unknown[0]}",
            f"no spend column for campaign(s) {unknown} of the priors file",
            f"spend columns: {', '.join(campaigns) or '(none)'}",
            priors_file or None,
        )
    n_days = data.n_periods * data.period_days
    yearly = priors.arrivals.yearly_terms
    if yearly is None:
        yearly = 2 if n_days >= 365 else 0
    weekly = priors.arrivals.weekly_terms
    if weekly is None:
        weekly = 2 if data.period_days == 1 else 0
    spend_offset = int((data.dates[0] - data.spend_start) / np.timedelta64(1, "D"))
    shape = np.array(
        [priors.campaigns[c].shape if c in priors.campaigns else 1.0 for c in campaigns]
    )
    grid = Grid(
        stages=stages,
        entry=idx[funnel.entry],
        edges=edges,
        dates=data.dates,
        period_days=int(data.period_days),
        steps_per_day=steps_per_day,
        campaigns=campaigns,
        spend=np.asarray(data.spend, float).reshape(len(campaigns), -1),
        spend_offset=spend_offset,
        effect_campaign=np.array(effect_c, dtype=int),
        effect_edge=np.array(effect_k, dtype=int),
        shape=shape,
        yearly_terms=int(yearly),
        weekly_terms=int(weekly),
        trend_days=float(n_days),
        n_segments=len(data.segments),
        segments=tuple(data.segments),
    )
    # half-life and half-saturation centres
    hl_c, hl_sd, hs_c, hs_sd = [], [], [], []
    for c, name in enumerate(campaigns):
        spec = priors.campaigns.get(name)
        hl = spec.half_life_days if spec is not None else None
        hl_c.append(np.log(hl.median if hl else 7.0))
        hl_sd.append(hl.sd_log if hl else 1.0)
        if spec is not None and spec.half_saturation is not None:
            hs_c.append(np.log(spec.half_saturation.median))
            hs_sd.append(spec.half_saturation.sd_log)
        else:
            carry = 0.5 ** (1.0 / np.exp(hl_c[-1]))
            x = adstock(grid.spend[c : c + 1], np.array([carry]))[0]
            typical = np.median(x[x > 0]) if (x > 0).any() else 1.0
            hs_c.append(np.log(typical))
            hs_sd.append(1.0)
    s_index = np.array([idx[s] + s_n * KINDS.index(k) for s, k in data.series])
    counts = np.asarray(data.counts, float)
    level = []
    entry_series = [
        n for n, (s, k) in enumerate(data.series) if s == funnel.entry and k == KINDS[0]
    ]
    for g in range(len(data.segments)):
        if entry_series:
            per_day = np.nanmedian(counts[g, : min(8, counts.shape[1]), entry_series[0]])
            level.append(np.log(max(per_day / data.period_days, 1e-3)))
        else:
            level.append(np.log(_GUESS_LEVEL))
    return Design(
        grid=grid,
        edge_names=names,
        effect_names=tuple(fx_names),
        log_rate_centre=centre,
        rate_sd=float(priors.rates.sd_log),
        lift_centre=np.array(fx_centre, float),
        lift_sd=np.array(fx_sd, float),
        half_life_centre=np.array(hl_c, float),
        half_life_sd=np.array(hl_sd, float),
        half_sat_centre=np.array(hs_c, float),
        half_sat_sd=np.array(hs_sd, float),
        level_centre=np.array(level, float),
        level_sd=1.0 if entry_series else 3.0,
        trend_sd=float(priors.arrivals.trend_sd),
        seasonal_sd=float(priors.arrivals.seasonal_sd),
        noise_sd=float(priors.noise.sd),
        noise_per_series=bool(priors.noise.per_series),
        process_noise=_random_flows(priors.noise.process, counts),
        series=tuple(tuple(s) for s in data.series),  # type: ignore[misc]
        series_index=s_index,
        counts=counts,
    )


#: median count per period below which random flows are not modelled unless asked for
SMALL_COUNTS = 20.0


def _random_flows(asked: bool | None, counts: np.ndarray) -> bool:
    """Whether to model random flows: as asked, else when every series' median count is
    at least :data:`SMALL_COUNTS` (a Gaussian is good there)."""
    if asked is not None:
        return bool(asked)
    return bool(np.median(counts, axis=(0, 1)).min() >= SMALL_COUNTS)


def build_model(design: Design) -> pm.Model:
    """The PyMC model of ``design`` (data-dependent numbers are ``pm.Data``, so a compiled
    model can be reused on other data of the same shapes)."""
    import pymc as pm
    import pytensor
    import pytensor.tensor as pt

    if design.process_noise and design.whiten is None:  # until a first run says better
        design = with_noise_model(design, _centre_params(design), noise=design.noise_sd)
    g = design.grid
    s_n, k_n, t_n = g.n_stages, len(g.edges), g.n_periods
    g_n, c_n, f_n = g.n_segments, len(g.campaigns), len(g.effect_edge)
    n_d, n_s, dt = g.period_days, g.steps_per_day, g.dt
    blocks, first = g.blocked_spend()
    nb = blocks.shape[1]
    t_days, y_cols, w_cols = arrival_terms(g)
    src = np.zeros((k_n, s_n))
    onehot = np.zeros((k_n, s_n, s_n))
    for k, (i, j) in enumerate(g.edges):
        src[k, i] = 1.0
        if j < s_n:
            onehot[k, i, j] = 1.0
    has_out = src.sum(axis=0) > 0
    on_edge = np.zeros((f_n, k_n))
    for f, k in enumerate(g.effect_edge):
        if k >= 0:
            on_edge[f, k] = 1.0
    on_arr = (g.effect_edge < 0).astype(float)
    lag = np.arange(BLOCK)[:, None] - np.arange(BLOCK)[None, :]
    blag = np.arange(nb)[:, None] - np.arange(nb)[None, :]
    entry = np.zeros(s_n)
    entry[g.entry] = 1.0
    splits = exit_splits(design)
    coords = {
        "exit_part": _exit_labels(design, splits),
        "segment": list(g.segments),
        "stage": list(g.stages),
        "edge": list(design.edge_names),
        "effect": list(design.effect_names),
        "campaigns": list(g.campaigns),
        "series": [f"{s}: {k}" for s, k in design.series],
    }
    with pm.Model(coords=coords) as model:
        spend = pm.Data("spend_blocks", blocks)
        observed = pm.Data("counts", design.counts.astype("int64"))
        rate_centre = pm.Data("log_rate_centre", design.log_rate_centre)
        level_centre = pm.Data("level_centre", design.level_centre)
        hs_centre = pm.Data("half_sat_centre", design.half_sat_centre)

        # rates: sampled per stage as its total exit rate and its exits' shares, split
        # one after another (best-observed target first), so that a pinned share and a
        # loose total, or two loose exits that must add up, are separate directions,
        # not a curved ridge. The prior stays the one on each log rate (a correction
        # potential; in log rates the change of variables has unit Jacobian)
        z_exits = pm.Normal("z_exits", 0.0, 1.0, dims="exit_part")
        log_rate = _rates_from_exits(pt, rate_centre, design.rate_sd, z_exits, splits)
        z_rate = pm.Deterministic("z_rate", (log_rate - rate_centre) / design.rate_sd, dims="edge")
        pm.Potential("rate_prior", 0.5 * pt.sum(z_exits**2 - z_rate**2))
        if g_n > 1:
            sigma = pm.HalfNormal("segment_sd", 0.3)
            z_seg = pm.Normal("z_segment", 0.0, 1.0, dims=("segment", "edge"))
            log_rate_g = log_rate[None, :] + sigma * z_seg
        else:
            log_rate_g = log_rate[None, :]
        rate = pm.Deterministic("rate", pt.exp(log_rate_g), dims=("segment", "edge"))

        if f_n:
            z_lift = pm.Normal("z_lift", 0.0, 1.0, dims="effect")
            log_lift = pm.Deterministic(
                "log_lift", design.lift_centre + design.lift_sd * z_lift, dims="effect"
            )
        if c_n:
            z_hl = pm.Normal("z_half_life", 0.0, 1.0, dims="campaigns")
            half_life = pm.Deterministic(
                "half_life_days",
                pt.exp(design.half_life_centre + design.half_life_sd * z_hl),
                dims="campaigns",
            )
            log_c = np.log(0.5) / half_life  # log carryover per day
            pm.Deterministic("carryover", pt.exp(log_c), dims="campaigns")
            z_hs = pm.Normal("z_half_saturation", 0.0, 1.0, dims="campaigns")
            log_h = hs_centre + design.half_sat_sd * z_hs
            pm.Deterministic("half_saturation", pt.exp(log_h), dims="campaigns")
            # adstock: within 7-day blocks, then across blocks (exact; see flows.adstock_blocks)
            inner_w = pt.exp(np.maximum(lag, 0)[None] * log_c[:, None, None]) * (lag >= 0)[None]
            inner = pt.matmul(spend, inner_w.dimshuffle(0, 2, 1))  # (C, Nb, B)
            cross = (
                pt.exp(BLOCK * np.maximum(blag, 0)[None] * log_c[:, None, None]) * (blag >= 0)[None]
            )
            end = pt.matmul(cross, inner[:, :, -1:])[:, :, 0]  # (C, Nb)
            prev = pt.concatenate([pt.zeros_like(end[:, :1]), end[:, :-1]], axis=1)
            carried = pt.exp((np.arange(BLOCK) + 1.0)[None, :] * log_c[:, None])  # (C, B)
            x = (inner + carried[:, None, :] * prev[:, :, None]).reshape((c_n, nb * BLOCK))
            x = x[:, first * BLOCK : first * BLOCK + g.n_days]
            ratio = pt.exp(g.shape[:, None] * (pt.log(x + 1e-9) - log_h[:, None]))
            press = ratio / (1.0 + ratio)  # (C, days)
            press.name = "press"
            fx = log_lift[:, None] * press[g.effect_campaign]  # (F, days)
            log_m = pt.dot(fx.T, on_edge)  # (days, K)
            log_arr_fx = pt.dot(on_arr, fx)  # (days,)
        else:
            log_m = pt.zeros((g.n_days, k_n))
            log_arr_fx = pt.zeros((g.n_days,))

        def matrices(rates: Any) -> tuple[Any, Any]:
            lam = pt.dot(rates, src)  # (..., S)
            safe = pt.switch(has_out, lam, 1.0)
            gfac = -pt.expm1(-safe * dt) / safe
            ek = rates * pt.dot(gfac, src.T)  # (..., K)
            e = pt.tensordot(ek, onehot, axes=1)  # (..., S, S)
            p = e + pt.exp(-lam * dt)[..., None] * np.eye(s_n)
            return e, p

        # arrivals: the entry stage's counts pin its entries (new arrivals plus people
        # moving back), not arrivals alone. Sampled along that total, the level and the
        # rates of back edges do not form a curved ridge: z_entries sets
        # log(level·(1 + κ)), κ the people moving back per arrival in the steady state of
        # the baseline rates. The prior stays the one on the level (a correction
        # potential; the change of variables has unit Jacobian).
        e0, p0 = matrices(rate)  # (G, S, S)
        unit = pt.stack(
            [
                pt.linalg.solve(
                    pt.switch(has_out[:, None], pt.eye(s_n) - p0[gi].T, np.eye(s_n)),
                    (entry * has_out)[:, None],
                )[:, 0]
                for gi in range(g_n)
            ]
        )  # (G, S): people per stage in the steady state of one arrival per step
        back = pt.sum(unit * e0[:, :, g.entry], axis=1)  # (G,) κ
        z_entries = pm.Normal("z_entries", 0.0, 1.0, dims="segment")
        log_level = level_centre + design.level_sd * z_entries - pt.log1p(back)
        z_level = pm.Deterministic(
            "z_level", (log_level - level_centre) / design.level_sd, dims="segment"
        )
        pm.Potential("level_prior", 0.5 * pt.sum(z_entries**2 - z_level**2))
        level = pm.Deterministic("level", pt.exp(log_level), dims="segment")
        trend = pm.Normal("trend", 0.0, design.trend_sd)
        log_a = trend * t_days + log_arr_fx
        season0 = 0.0
        if y_cols.shape[1]:
            yearly = pm.Normal("yearly", 0.0, design.seasonal_sd, shape=y_cols.shape[1])
            log_a = log_a + pt.dot(y_cols, yearly)
            season0 = season0 + pt.dot(y_cols[0], yearly)
        if w_cols.shape[1]:
            weekly = pm.Normal("weekly", 0.0, design.seasonal_sd, shape=w_cols.shape[1])
            log_a = log_a + pt.dot(w_cols, weekly)
            season0 = season0 + pt.dot(w_cols[0], weekly)
        per_day = level[:, None] * pt.exp(log_a)[None, :]  # (G, days) arrivals per day

        # each day its own rates (flows.daily_rates), composed into periods day by day
        rate_d = rate[:, None, :] * pt.exp(log_m)[None]  # (G, days, K)
        e_d, p_d = matrices(rate_d)  # (G, days, S, S)
        e_d = e_d.reshape((g_n, t_n, n_d, s_n, s_n))
        p_d = p_d.reshape((g_n, t_n, n_d, s_n, s_n))
        b_d = (per_day * dt).reshape((g_n, t_n, n_d))[..., None] * entry  # (G, T, D, S)
        pi, beta, f_mat, f_vec = compose_days(p_d, e_d, b_d, n_d, n_s, np.eye(s_n))

        # steady state of day 0's baseline (no campaign pressure); a stage nobody
        # leaves has none and starts empty
        b0 = level * pt.exp(season0) * dt  # (G,)
        m0 = unit * b0[:, None]
        # the funnel at the data's start: near, not exactly at, that steady state
        z_init = pm.Normal("z_initial", 0.0, 1.0, dims=("segment", "stage"))
        init_log = pm.Deterministic("initial", _INIT_SD * z_init, dims=("segment", "stage"))
        m0 = pt.specify_shape(m0 * pt.exp(init_log), (g_n, s_n))
        m0.name = "m0"

        def step(pi_t: Any, beta_t: Any, m: Any) -> Any:
            return pt.specify_shape(pt.matmul(m[:, None, :], pi_t)[:, 0, :] + beta_t, (g_n, s_n))

        m_next = pytensor.scan(
            step,
            sequences=[pi.dimshuffle(1, 0, 2, 3), beta.dimshuffle(1, 0, 2)],
            outputs_info=[m0],
            return_updates=False,
        )  # (T, G, S)
        m_start = pt.concatenate([m0[None], m_next[:-1]], axis=0).dimshuffle(1, 0, 2)
        occ = m_next.dimshuffle(1, 0, 2)  # (G, T, S)
        ent = pt.matmul(m_start[..., None, :], f_mat)[..., 0, :] + f_vec
        ent = ent + per_day.reshape((g_n, t_n, n_d)).sum(axis=-1)[..., None] * entry
        both = pt.concatenate([ent, occ], axis=-1)  # (G, T, 2S)
        mu = pt.maximum(both[..., design.series_index], 1e-6)
        mu.name = "mu"
        if design.process_noise:
            # random flows (kalman.py): a Gaussian with their covariance across periods,
            # fixed at the first run's estimate (whitening matrix W), plus the measurement
            # noise estimated there
            level = pm.Data("noise_level", np.asarray(design.noise_level, float))
            noise = pm.Deterministic("noise", level * np.ones(len(design.series)), dims="series")
            whiten = pm.Data("whiten", design.whiten)  # (G, T·N, T·N)
            resid = (pt.cast(observed, "float64") - mu).reshape((g_n, -1))
            white = pt.matmul(whiten, resid[..., None])[..., 0]
            pm.Potential("obs", -0.5 * pt.sum(white**2))
        else:
            if design.noise_per_series:
                noise = pm.HalfNormal("noise", design.noise_sd, dims="series")
            else:  # one extra noise for all series: a series cannot be given up on alone
                shared = pm.HalfNormal("noise_shared", design.noise_sd)
                noise = pm.Deterministic(
                    "noise", shared * np.ones(len(design.series)), dims="series"
                )
            # a floor of 0.1% keeps alpha below 1e6: PyMC's NegativeBinomial turns into a
            # Poisson past alpha 1e10, a kink that costs the sampler divergences
            alpha = 1.0 / (noise**2 + _NOISE_FLOOR**2)
            pm.NegativeBinomial("obs", mu=mu, alpha=alpha, observed=observed)
    return model


def exit_splits(design: Design) -> list[list[int]]:
    """Per stage that people leave, its exits (edge indices) in the order the model
    splits them: first an exit to a stage whose entries are counted, then one to the
    entry stage (its entries mix with arrivals), then to a stage not counted, ``lost``
    last — from the best-pinned share to the loosest."""
    g = design.grid
    counted = {s for s, kind in design.series if kind == KINDS[0]}
    names = list(g.stages)

    def rank(k: int) -> int:
        j = g.edges[k][1]
        if j >= g.n_stages:
            return 3
        if j == g.entry:
            return 1
        return 0 if names[j] in counted else 2

    out = []
    for i in range(g.n_stages):
        exits = [k for k, (a, _) in enumerate(g.edges) if a == i]
        if exits:
            out.append(sorted(exits, key=rank))
    return out


def _exit_labels(design: Design, splits: list[list[int]]) -> list[str]:
    """What each free rate variable is, by edge slot: a stage's total exit rate sits in
    its first exit's slot, the share split off before exit ``n + 1`` in that exit's."""
    edge = design.edge_names
    labels = [""] * len(edge)
    for exits in splits:
        source = edge[exits[0]].split(" -> ")[0]
        labels[exits[0]] = f"{source}: total exit rate"
        targets = [edge[k].split(" -> ")[1] for k in exits]
        for n, k in enumerate(exits[1:]):
            labels[k] = f"{source}: to {targets[n]} rather than {' or '.join(targets[n + 1 :])}"
    return labels


def _rates_from_exits(pt: Any, centre: Any, sd: float, z: Any, splits: list[list[int]]) -> Any:
    """Log rates (K,) from the standardised totals and split logits ``z`` (in edge
    slots, see :func:`_exit_labels`), centred so ``z = 0`` gives the priors' centres."""
    out: list[Any] = [None] * int(sum(len(x) for x in splits))
    for exits in splits:
        c = centre[exits]
        log_total = pt.logsumexp(c) + sd * z[exits[0]]
        remaining = 0.0  # log of the share not yet given out
        for n, k in enumerate(exits[:-1]):
            logit = c[n] - pt.logsumexp(c[n + 1 :]) + sd * z[exits[n + 1]]
            out[k] = log_total + remaining + -pt.softplus(-logit)
            remaining = remaining - pt.softplus(logit)
        out[exits[-1]] = log_total + remaining
    return pt.stack(out)


def params_from(post: Any, design: Design) -> Params:
    """:class:`Params` with one row per posterior draw (chains one after another)."""

    def flat(name: str, tail: tuple[int, ...]) -> np.ndarray:
        if name not in post:
            return np.zeros((n,) + tail)
        v = np.asarray(post[name])
        return v.reshape((-1,) + v.shape[2:])

    g = design.grid
    n = int(post["rate"].shape[0] * post["rate"].shape[1])
    c_n = len(g.campaigns)
    return Params(
        rate=flat("rate", ()),
        log_lift=flat("log_lift", (len(g.effect_edge),)),
        carryover=flat("carryover", (c_n,)),
        half_saturation=flat("half_saturation", (c_n,)) if c_n else np.ones((n, 0)),
        level=flat("level", ()),
        trend=flat("trend", ()),
        yearly=flat("yearly", (2 * g.yearly_terms,)),
        weekly=flat("weekly", (2 * g.weekly_terms,)),
        initial=flat("initial", (g.n_segments, g.n_stages)),
    )


def sample_counts(
    design: Design,
    *,
    sampler: str = "nutpie",
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    seed: int | None = None,
    progress: bool = False,
) -> Any:
    """NUTS draws of the model of ``design`` (InferenceData with the sampler's attrs).

    With random flows the covariance of the counts is set first: from the priors'
    centres, a short first run (one chain), then from that run's posterior mean, with
    the measurement noise the counts need beyond random flows (:func:`kalman.noise_model`);
    the main run samples with it.

    nutpie adapts a low-rank mass matrix (count posteriors are strongly correlated:
    with it, about 15 leapfrog steps per draw instead of hundreds). A model compiled
    once is kept for the process and reused, with the new data, for any design of the
    same structure and shapes (a benchmark over many data sets compiles once).
    """
    from funnelsim.inference.sampling import _say

    run = dict(sampler=sampler, seed=seed, progress=progress)
    if not design.process_noise:
        return _sample(design, draws=draws, tune=tune, chains=chains, **run)
    design = with_noise_model(design, _centre_params(design), noise=design.noise_sd)
    _say(progress, "a first short run (1 chain) sets the covariance of the random flows…")
    first = _sample(design, draws=FIRST_RUN, tune=FIRST_RUN, chains=1, **run)
    design = with_noise_model(design, _mean_params(first.posterior, design))
    _say(
        progress, f"the main run (measurement noise {design.noise_level:.1%} beyond random flows)…"
    )
    idata = _sample(design, draws=draws, tune=tune, chains=chains, **run)
    for key in ("compile_seconds", "sampling_seconds"):  # both runs counted
        idata.attrs[key] = round(float(idata.attrs[key]) + float(first.attrs[key]), 3)
    return idata


#: draws and tuning steps of the first run that sets the covariance of random flows
FIRST_RUN = 300


def _sample(design: Design, **kw: Any) -> Any:
    from funnelsim.inference.sampling import compile_nutpie, sample

    model = build_model(design)
    compiled = None
    if kw["sampler"] == "nutpie":
        key = _structure_key(design)
        compiled = _COMPILED.get(key)
        if compiled is None:
            try:
                compiled = compile_nutpie(model, kw["progress"])
            except Exception:  # noqa: BLE001 - sample() reports and falls back to PyMC
                compiled = None
            else:
                _COMPILED.clear()
                _COMPILED[key] = compiled
        else:
            compiled = compiled.with_data(**_data_of(design))
    return sample(model, low_rank=True, compiled=compiled, target_accept=TARGET_ACCEPT, **kw)


def with_noise_model(design: Design, params: Params, noise: float | None = None) -> Design:
    """``design`` with the whitening matrix of its counts' covariance under random flows
    at ``params`` (one draw), and the measurement noise (estimated unless given)."""
    from dataclasses import replace

    from funnelsim.inference.kalman import noise_model

    free = int(sum(np.size(v) for v in build_model_sizes(design)))
    whiten, level = noise_model(
        design.grid, params, design.series_index, design.counts.astype(float), _NOISE_FLOOR,
        free=free, noise=noise,
    )  # fmt: skip
    return replace(design, whiten=whiten, noise_level=float(level))


def build_model_sizes(design: Design) -> list[int]:
    """Sizes of the model's free parameters (for the degrees of freedom of the noise)."""
    g = design.grid
    sizes = [len(g.edges), len(g.effect_edge), 2 * len(g.campaigns), g.n_segments, 1,
             2 * g.yearly_terms, 2 * g.weekly_terms, g.n_segments * g.n_stages]  # fmt: skip
    if g.n_segments > 1:
        sizes += [1, g.n_segments * len(g.edges)]
    return sizes


def _centre_params(design: Design) -> Params:
    """The priors' centres as one draw."""
    g = design.grid
    hl = np.exp(design.half_life_centre)
    return Params(
        rate=np.exp(design.log_rate_centre)[None, None].repeat(g.n_segments, axis=1),
        log_lift=np.asarray(design.lift_centre, float)[None],
        carryover=np.exp(np.log(0.5) / hl)[None],
        half_saturation=np.exp(design.half_sat_centre)[None],
        level=np.exp(design.level_centre)[None],
        trend=np.zeros(1),
        yearly=np.zeros((1, 2 * g.yearly_terms)),
        weekly=np.zeros((1, 2 * g.weekly_terms)),
        initial=np.zeros((1, g.n_segments, g.n_stages)),
    )


def _mean_params(post: Any, design: Design) -> Params:
    """The posterior mean of every parameter, as one draw."""
    from dataclasses import fields

    p = params_from(post, design)  # every field set (zeros where the model has none)
    mean: dict[str, Any] = {f.name: getattr(p, f.name).mean(0, keepdims=True) for f in fields(p)}
    return Params(**mean)


_COMPILED: dict[str, Any] = {}


def _data_of(design: Design) -> dict[str, np.ndarray]:
    blocks, _ = design.grid.blocked_spend()
    extra: dict[str, Any] = {}
    if design.process_noise:
        extra = {"whiten": design.whiten, "noise_level": np.asarray(design.noise_level, float)}
    return extra | {
        "spend_blocks": blocks,
        "counts": design.counts.astype("int64"),
        "log_rate_centre": design.log_rate_centre,
        "level_centre": design.level_centre,
        "half_sat_centre": design.half_sat_centre,
    }


def _structure_key(design: Design) -> str:
    """Everything of a design that is compiled into the model (not ``pm.Data``)."""
    g = design.grid
    blocks, first = g.blocked_spend()
    parts = [
        design.to_json(),
        str(blocks.shape),
        str(first),
        str(g.dates[0]),
        str(g.n_periods),
        repr(design.lift_centre.tolist()),
        repr(design.lift_sd.tolist()),
        repr(design.half_life_centre.tolist()),
        repr(design.half_life_sd.tolist()),
        repr(design.half_sat_sd.tolist()),
        repr((design.rate_sd, design.level_sd, design.noise_sd)),
        repr(design.series_index.tolist()),
    ]
    return "|".join(parts)
