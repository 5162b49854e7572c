"""Fit a funnel from aggregate counts and spend, and what such a fit can tell.

:func:`fit_counts` samples the model of :mod:`funnelsim.inference.aggregate` and returns
a :class:`~funnelsim.inference.fitted.FittedFunnel` (kind ``"counts"``) that works in a
scenario's ``fit:`` like any other fit. The functions below read a counts fit:

* :func:`contributions` — entries into each stage over the history attributable to
  each campaign: the fitted model with the campaign switched off, per posterior draw;
* :func:`identifiability` — how much the data shrank each parameter's prior (the
  non-centred ``z`` of every prior is standard normal, so the contraction is
  ``1 − sd(z | data)²``), strong posterior correlations, and what data would help;
* :func:`fitted_bands` and :func:`holdout_check` — posterior predictive counts over the
  history (and over held-out periods) with the error and interval coverage per series;
* :func:`response_curves` — the steady-state lift of each campaign against daily spend.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from funnelsim.funnel import Funnel
from funnelsim.inference.aggregate import _NOISE_FLOOR, KINDS, Design, design_for, params_from
from funnelsim.inference.count_priors import CountPriors
from funnelsim.inference.fitted import HDI_PROB, FittedFunnel
from funnelsim.inference.flows import Grid, Params, hill, mean_flows
from funnelsim.inference.kalman import kalman, measurement_variance, moments

if TYPE_CHECKING:
    from funnelsim.data.counts import CountData

__all__ = [
    "fit_counts",
    "count_design",
    "count_params",
    "contributions",
    "contributions_over_time",
    "occupancy_now",
    "identifiability",
    "fitted_bands",
    "holdout_check",
    "response_curves",
    "PINNED",
    "WEAK",
]

#: contraction of the prior above which the data pin a parameter down
PINNED = 0.9
#: contraction below which a parameter is mostly its prior
WEAK = 0.5
_MAX_DRAWS = 1000  # draws used for contributions and predictive bands


def fit_counts(
    data: CountData,
    funnel: Funnel,
    priors: CountPriors | None = None,
    *,
    holdout: int = 0,
    sampler: str = "nutpie",
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    seed: int | None = None,
    progress: bool = False,
    priors_file: str = "",
) -> FittedFunnel:
    """Fit rates, campaign effects, carryover and saturation from funnel counts.

    ``holdout`` periods at the end are left out of the fit and forecast from it (their
    counts are kept in the fit's ``constant_data`` for :func:`holdout_check`).
    """
    from funnelsim.inference.aggregate import sample_counts

    if holdout < 0 or holdout >= data.n_periods - 4:
        raise ValueError(
            f"holdout must leave at least 4 periods to fit (the data have {data.n_periods})"
        )
    fit_data = data.head(data.n_periods - holdout) if holdout else data
    design = design_for(fit_data, funnel, priors, priors_file=priors_file)
    idata = sample_counts(
        design, sampler=sampler, draws=draws, tune=tune, chains=chains, seed=seed, progress=progress
    )
    idata = _assemble(idata, design, data, holdout, seed)
    summary = {
        "file": data.file,
        "periods": int(fit_data.n_periods),
        "period_days": int(data.period_days),
        "start": str(data.dates[0].date()),
        "end": str((fit_data.dates[-1] + pd.Timedelta(days=data.period_days - 1)).date()),
        "series": [f"{s}: {k}" for s, k in data.series],
        "campaigns": list(data.campaigns),
        "segments": list(data.segments),
        "holdout": int(holdout),
        "arrivals_per_day": {"*": float(np.median(idata.posterior["arrivals"].values))},
    }
    fit = FittedFunnel(
        idata,
        stages=funnel.stages,
        goal=funnel.goal,
        entry=funnel.entry,
        kind="counts",
        data=summary,
    )
    notes = list(fit.notes) + identifiability_notes(fit)
    if not design.process_noise and (priors is None or priors.noise.process is None):
        notes.append(
            "counts are small (a series' median is below 20 per period): they are modelled "
            "as NegativeBinomial around the mean flows, independent from period to period; "
            "intervals may be too narrow (noise: {process: true} models random flows)"
        )
    fit.idata.attrs["notes"] = json.dumps(notes)
    return fit


def _assemble(idata: Any, design: Design, data: CountData, holdout: int, seed: int | None) -> Any:
    """The fit's InferenceData: posterior in the FittedFunnel contract plus what a count
    fit needs to recompute its flows; observed counts; posterior predictive counts."""
    import arviz as az
    import xarray as xr

    g = design.grid
    post = idata.posterior
    keep = [v for v in post.data_vars if not str(v).startswith("log_lift")]
    out = post[keep]
    if "log_lift" in post:
        lift = np.exp(post["log_lift"])
        names = list(design.effect_names)
        out["lift"] = lift.assign_coords(
            campaign=("effect", [n.split(": ", 1)[0] for n in names]),
            target=("effect", [_target(n.split(": ", 1)[1]) for n in names]),
        )
    # arrivals per day at the end of the fitted data (trend and season included)
    params = params_from(post, design)
    from funnelsim.inference.flows import arrival_terms

    t, yearly, weekly = arrival_terms(g)
    log_end = params.trend * t[-1] + params.yearly @ yearly[-1] + params.weekly @ weekly[-1]
    arr = params.level * np.exp(log_end)[:, None]  # (D, G)
    c_n, d_n = post.sizes["chain"], post.sizes["draw"]
    out["arrivals"] = xr.DataArray(
        arr.reshape(c_n, d_n, g.n_segments, 1),
        dims=("chain", "draw", "segment", "channel"),
        coords={"segment": list(g.segments), "channel": ["*"]},
    )
    out.attrs = dict(post.attrs)
    # posterior predictive counts of the fitted periods
    rng = np.random.default_rng(seed)
    noise = post["noise"].values.reshape(-1, len(design.series))
    mean, var = _predictive(g, design.series_index, params, noise, design.process_noise)
    ppc = _draw_counts(rng, mean, var, noise, design.process_noise)
    series = [f"{s}: {k}" for s, k in design.series]
    coords = {"segment": list(g.segments), "period": g.dates, "series": series}
    dims = ("segment", "period", "series")
    pp = xr.Dataset(
        {"counts": (("chain", "draw") + dims, ppc.reshape(c_n, d_n, *ppc.shape[1:]))},
        coords=coords,
    )
    obs = xr.Dataset({"counts": (dims, design.counts)}, coords=coords)
    const = {
        "spend": xr.DataArray(
            g.spend,
            dims=("campaign", "spend_day"),
            coords={
                "campaign": list(g.campaigns),
                "spend_day": pd.date_range(
                    data.spend_start, periods=g.spend.shape[1], freq="D"
                ).as_unit("ns"),
            },
        )
    }
    if holdout:
        later = data.dates[-holdout:]
        const["holdout_counts"] = xr.DataArray(
            data.counts[:, -holdout:, :],
            dims=("segment", "holdout_period", "series"),
            coords={"segment": list(g.segments), "holdout_period": later, "series": series},
        )
    result = az.InferenceData(
        posterior=out,
        sample_stats=idata.sample_stats,
        observed_data=obs,
        posterior_predictive=pp,
        constant_data=xr.Dataset(const),
    )
    result.attrs.update(dict(idata.attrs))
    result.attrs["funnelsim_counts"] = design.to_json()
    return result


def _target(target: str) -> str:
    return "arrivals:*" if target == "arrivals" else target


def _negbin(rng: np.random.Generator, mu: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """NegativeBinomial draws with mean ``mu`` and variance ``mu + (noise² + 0.001²)·mu²``
    (the model's noise floor included)."""
    alpha = 1.0 / (noise**2 + _NOISE_FLOOR**2)
    lam = rng.gamma(alpha, mu / alpha)
    return rng.poisson(lam).astype(np.int64)


def _predictive(
    grid: Grid,
    index: np.ndarray,
    params: Params,
    noise: np.ndarray,
    process: bool,
    *,
    start: tuple[np.ndarray, np.ndarray] | None = None,
    first: int = 0,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Mean ``(D, G, T', N)`` of the observed series and, with random flows (``process``),
    their variance with the measurement noise ``(D, N)``; from the funnel's start, or
    forecast from a filtered ``start`` at period ``first``."""
    if not process:
        ent, occ = mean_flows(grid, params)
        return np.concatenate([ent, occ], axis=-1)[..., index], None
    mean, var = moments(grid, params, start=start, first=first)
    mean, var = mean[..., index], var[..., index]
    return mean, var + measurement_variance(mean, noise[:, None, None, :], _NOISE_FLOOR)


def _draw_counts(
    rng: np.random.Generator,
    mean: np.ndarray,
    var: np.ndarray | None,
    noise: np.ndarray,
    process: bool,
) -> np.ndarray:
    """Predictive counts: Gaussian around random flows (rounded, not below 0), or
    NegativeBinomial around mean flows."""
    if not process or var is None:
        return _negbin(rng, mean, noise[:, None, None, :])
    draws = rng.normal(mean, np.sqrt(var))
    return np.maximum(np.rint(draws), 0.0).astype(np.int64)


# ---------------------------------------------------------------------- reading a fit
def count_design(fit: FittedFunnel) -> tuple[Grid, np.ndarray, list[tuple[str, str]]]:
    """The grid of a counts fit, the index of each observed series into ``[entries,
    occupancy]`` and the series ``(stage, kind)``; raises ValueError for other fits."""
    spec = _spec(fit)
    dates = pd.DatetimeIndex(fit.idata.observed_data["period"].values)
    spend = np.asarray(fit.idata.constant_data["spend"].values, float)
    s_n = len(spec["stages"])
    grid = Grid(
        stages=tuple(spec["stages"]),
        entry=int(spec["entry"]),
        edges=tuple((int(a), int(b)) for a, b in spec["edges"]),
        dates=dates,
        period_days=int(spec["period_days"]),
        steps_per_day=int(spec["steps_per_day"]),
        campaigns=tuple(spec["campaigns"]),
        spend=spend.reshape(len(spec["campaigns"]), -1),
        spend_offset=int(spec["spend_offset"]),
        effect_campaign=np.array(spec["effect_campaign"], dtype=int),
        effect_edge=np.array(spec["effect_edge"], dtype=int),
        shape=np.array(spec["shape"], float),
        yearly_terms=int(spec["yearly_terms"]),
        weekly_terms=int(spec["weekly_terms"]),
        trend_days=float(spec["trend_days"]),
        n_segments=len(spec["segments"]),
        segments=tuple(spec["segments"]),
    )
    series = [(str(s), str(k)) for s, k in spec["series"]]
    index = np.array([spec["stages"].index(s) + s_n * KINDS.index(k) for s, k in series])
    return grid, index, series


def _spec(fit: FittedFunnel) -> dict[str, Any]:
    raw = fit.idata.attrs.get("funnelsim_counts")
    if fit.kind != "counts" or not raw:
        raise ValueError(f"this is a fit of {fit.kind}, not of counts")
    return dict(json.loads(raw))


def _random_flows(fit: FittedFunnel) -> bool:
    """Whether the fit's likelihood modelled random flows (fits made before there was
    the choice used mean flows)."""
    return bool(_spec(fit).get("process_noise", False))


def _noise(fit: FittedFunnel, params: Params) -> np.ndarray:
    """The measurement noise ``(D, N)`` of the same draws as ``params`` (evenly thinned)."""
    noise = _flat(fit.idata.posterior, "noise")
    return noise[np.linspace(0, len(noise) - 1, params.rate.shape[0]).astype(int)]


def _filtered(fit: FittedFunnel, grid: Grid, params: Params) -> dict[str, np.ndarray]:
    """The Kalman filter of the fitted counts, per draw (see :func:`kalman.kalman`)."""
    _, index, _ = count_design(fit)
    counts = fit.idata.observed_data["counts"].values.astype(float)
    return kalman(grid, params, counts, index, _noise(fit, params), _NOISE_FLOOR)


def count_params(fit: FittedFunnel, n: int | None = _MAX_DRAWS) -> Params:
    """Posterior draws of a counts fit as :class:`Params` (evenly thinned to ``n``)."""
    post = fit.idata.posterior
    flat = {name: _flat(post, name) for name in post.data_vars}
    total = len(flat["rate"])
    pick = np.arange(total) if n is None or n >= total else np.linspace(0, total - 1, n).astype(int)
    grid, _, _ = count_design(fit)
    c_n, f_n = len(grid.campaigns), len(grid.effect_edge)

    def get(name: str, tail: tuple[int, ...]) -> np.ndarray:
        return flat[name][pick] if name in flat else np.zeros((len(pick),) + tail)

    log_lift = np.log(flat["lift"][pick]) if "lift" in flat else np.zeros((len(pick), f_n))
    return Params(
        rate=get("rate", ()),
        log_lift=log_lift,
        carryover=get("carryover", (c_n,)),
        half_saturation=get("half_saturation", (c_n,)) if c_n else np.ones((len(pick), 0)),
        level=get("level", ()),
        trend=get("trend", ()),
        yearly=get("yearly", (2 * grid.yearly_terms,)),
        weekly=get("weekly", (2 * grid.weekly_terms,)),
        initial=get("initial", (grid.n_segments, grid.n_stages)),
    )


def _flat(post: Any, name: str) -> np.ndarray:
    v = np.asarray(post[name].values)
    return v.reshape((-1,) + v.shape[2:])


def _hdi(x: np.ndarray, prob: float = HDI_PROB) -> tuple[float, float]:
    import arviz as az

    lo, hi = az.hdi(np.asarray(x, float), hdi_prob=prob)
    return float(lo), float(hi)


def _memo(fit: FittedFunnel, key: tuple, compute: Any) -> Any:
    """``compute()`` once per fit (a fit's draws do not change): writing a fit and its
    report both read contributions and predictive bands."""
    memo = fit.__dict__.setdefault("_count_memo", {})
    if key not in memo:
        memo[key] = compute()
    return memo[key]


def contributions(fit: FittedFunnel, hdi_prob: float = HDI_PROB) -> pd.DataFrame:
    """``campaign, stage, contribution_mean, contribution_hdi_low, contribution_hdi_high``:
    entries into each stage over the fitted history attributable to each campaign — the
    fitted model's entries minus its entries with the campaign switched off, per draw."""
    return _memo(fit, ("contributions", hdi_prob), lambda: _contributions(fit, hdi_prob))


def _contributions(fit: FittedFunnel, hdi_prob: float) -> pd.DataFrame:
    grid, _, _ = count_design(fit)
    params = count_params(fit)
    base, _ = mean_flows(grid, params)
    rows = []
    for c, name in enumerate(grid.campaigns):
        off, _ = mean_flows(grid, params, off=c)
        total = (base - off).sum(axis=(1, 2))  # (D, S)
        for s, stage in enumerate(grid.stages):
            lo, hi = _hdi(total[:, s], hdi_prob)
            rows.append(
                {
                    "campaign": name,
                    "stage": stage,
                    "contribution_mean": float(total[:, s].mean()),
                    "contribution_hdi_low": lo,
                    "contribution_hdi_high": hi,
                }
            )
    cols = ["campaign", "stage", "contribution_mean", "contribution_hdi_low"]
    return pd.DataFrame(rows, columns=cols + ["contribution_hdi_high"])


def occupancy_now(fit: FittedFunnel) -> dict[str, float]:
    """Posterior-mean people in each stage at the end of the fitted data (all segments)."""
    grid, _, _ = count_design(fit)
    params = count_params(fit, 400)
    if _random_flows(fit):  # where the filter, having read every count, puts the people
        last = _filtered(fit, grid, params)["m"].sum(axis=1).mean(axis=0)
    else:
        _, occ = mean_flows(grid, params)
        last = occ[:, :, -1, :].sum(axis=1).mean(axis=0)
    return {stage: float(v) for stage, v in zip(grid.stages, last)}


def occupancy_draws(
    fit: FittedFunnel, n: int = 400, seed: int | None = 0
) -> tuple[list[str], np.ndarray]:
    """People in each stage at the end of the fitted data, per posterior draw ``(n, S)``
    (all segments): where the Kalman filter, having read every count, puts them, with
    the filter's own uncertainty drawn around it (without random flows: the mean flows)."""
    grid, _, _ = count_design(fit)
    params = count_params(fit, n)
    rng = np.random.default_rng(seed)
    if _random_flows(fit):
        f = _filtered(fit, grid, params)
        m, cov = f["m"], f["cov"]  # (D, G, S), (D, G, S, S)
        jitter = np.linalg.cholesky(cov + 1e-9 * np.eye(cov.shape[-1])) @ rng.standard_normal(
            m.shape + (1,)
        )
        draws = (m + jitter[..., 0]).sum(axis=1)
    else:
        _, occ = mean_flows(grid, params)
        draws = occ[:, :, -1, :].sum(axis=1)
    return list(grid.stages), np.clip(draws, 0.0, None)


def contributions_over_time(
    fit: FittedFunnel, stage: str | None = None
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Posterior-mean entries into ``stage`` (default: the goal) per period without any
    campaign's share ``(T,)``, and each campaign's share ``(T,)`` (summed over segments)."""
    grid, _, _ = count_design(fit)
    s = grid.stages.index(stage or fit.goal)
    params = count_params(fit, 400)
    base, _ = mean_flows(grid, params)
    total = base[..., s].sum(axis=1).mean(axis=0)
    parts = {}
    for c, name in enumerate(grid.campaigns):
        off, _ = mean_flows(grid, params, off=c)
        parts[name] = (base - off)[..., s].sum(axis=1).mean(axis=0)
    return total - sum(parts.values(), np.zeros_like(total)), parts


def fitted_bands(
    fit: FittedFunnel, *, include_holdout: bool = True, seed: int = 0
) -> dict[str, Any]:
    """Posterior predictive counts per series, summed over segments: ``dates``,
    ``series``, ``labels``, ``observed``, the expected count ``mean`` and the quantiles
    ``lo90, lo50, hi50, hi90`` (5, 25, 75, 95%; all ``(T, N)``), the predictive ``draws``
    and ``holdout_start`` (index of the first held-out period, or None). With
    ``include_holdout`` the held-out periods are forecast and appended."""
    return _memo(
        fit, ("bands", include_holdout, seed), lambda: _fitted_bands(fit, include_holdout, seed)
    )


def _fitted_bands(fit: FittedFunnel, include_holdout: bool, seed: int) -> dict[str, Any]:
    grid, index, series = count_design(fit)
    observed = fit.idata.observed_data["counts"].values.sum(axis=0)  # (T, N)
    holdout_start = None
    const = fit.idata.constant_data
    if include_holdout and "holdout_counts" in const:
        extra = const["holdout_counts"].values.sum(axis=0)
        holdout_start = grid.n_periods
        grid = grid.extended(grid.n_periods + extra.shape[0])
        observed = np.concatenate([observed, extra], axis=0)
    params = count_params(fit)
    noise = _noise(fit, params)
    process = _random_flows(fit)
    fitted = fit.idata.observed_data["counts"].sizes["period"]
    mean, var = _predictive(grid.extended(fitted), index, params, noise, process)
    if holdout_start is not None and process:
        # the held-out periods forecast from where the filter leaves the funnel
        state = _filtered(fit, grid, params)
        f_mean, f_var = _predictive(
            grid, index, params, noise, process, start=(state["m"], state["cov"]), first=fitted
        )
        mean = np.concatenate([mean, f_mean], axis=2)
        var = np.concatenate([var, f_var], axis=2)  # type: ignore[list-item]
    elif holdout_start is not None:
        mean, _ = _predictive(grid, index, params, noise, process)
    rng = np.random.default_rng(seed)
    draws = _draw_counts(rng, mean, var, noise, process).sum(axis=1)
    q = np.quantile(draws, [0.05, 0.25, 0.75, 0.95], axis=0)
    return {
        "dates": grid.dates,
        "labels": [f"{s} — {k}" for s, k in series],
        "series": series,
        "observed": observed.astype(float),
        "mean": mean.sum(axis=1).mean(axis=0),
        "lo90": q[0],
        "lo50": q[1],
        "hi50": q[2],
        "hi90": q[3],
        "holdout_start": holdout_start,
        "draws": draws,
    }


def holdout_check(fit: FittedFunnel) -> pd.DataFrame:
    """Per series over the held-out periods: ``stage, kind, periods, mean_abs_pct_error``
    (of the posterior-mean forecast) and ``coverage_90`` (share of held-out counts inside
    the 90% predictive interval). Empty when the fit held nothing out."""
    cols = ["stage", "kind", "periods", "mean_abs_pct_error", "coverage_90"]
    if "holdout_counts" not in fit.idata.constant_data:
        return pd.DataFrame(columns=cols)
    bands = fitted_bands(fit)
    h0 = bands["holdout_start"]
    rows = []
    for n, (stage, kind) in enumerate(bands["series"]):
        obs = bands["observed"][h0:, n]
        mean = bands["mean"][h0:, n]
        inside = (obs >= bands["lo90"][h0:, n]) & (obs <= bands["hi90"][h0:, n])
        rows.append(
            {
                "stage": stage,
                "kind": kind,
                "periods": len(obs),
                "mean_abs_pct_error": float(
                    np.mean(np.abs(mean - obs) / np.maximum(obs, 1.0)) * 100
                ),
                "coverage_90": float(inside.mean()),
            }
        )
    return pd.DataFrame(rows, columns=cols)


def response_curves(fit: FittedFunnel, points: int = 60) -> dict[str, dict]:
    """Per campaign effect: steady-state % change of the rate it moves (or of arrivals)
    against daily spend, from zero to 1.5× the most the history used (posterior mean and
    HDI), with the daily spend levels used and ``half_saturation``: the posterior-median
    steady daily spend that gives half the full effect (the fitted half-saturation is in
    adstocked spend; kept up, a daily spend x adstocks to x / (1 − carryover))."""
    grid, _, _ = count_design(fit)
    params = count_params(fit, 500)
    out: dict[str, dict] = {}
    for f, c in enumerate(grid.effect_campaign):
        name = grid.campaigns[c]
        spend = grid.spend[c]
        used = spend[spend > 0]
        top = 1.5 * (used.max() if len(used) else 1.0)
        x = np.linspace(0.0, top, points)
        carry = params.carryover[:, c][:, None]
        press = hill(
            x[None, :] / (1.0 - carry), params.half_saturation[:, c][:, None], grid.shape[c]
        )
        pct = (np.exp(params.log_lift[:, f][:, None] * press) - 1.0) * 100.0
        hdi = np.array([_hdi(pct[:, i]) for i in range(points)])
        k = grid.effect_edge[f]
        target = "arrivals" if k < 0 else _edge_name(grid, k)
        key = name if sum(grid.effect_campaign == c) == 1 else f"{name}: {target}"
        out[key] = {
            "spend": x,
            "mean": pct.mean(axis=0),
            "lo": hdi[:, 0],
            "hi": hdi[:, 1],
            "target": target,
            "used": np.unique(np.round(used, 2)),
            # steady daily spend at half pressure: adstock = spend / (1 − carryover)
            "half_saturation": float(np.median(params.half_saturation[:, c] * (1.0 - carry[:, 0]))),
        }
    return out


def _edge_name(grid: Grid, k: int) -> str:
    i, j = grid.edges[k]
    names = list(grid.stages) + ["lost"]
    return f"{names[i]} -> {names[j]}"


# ---------------------------------------------------------------------- identifiability
_HINTS = {
    "rate": "occupancy counts of {stage} (people in it at each period's end) or a journey "
    "sample (`funnelsim fit events.csv --kind journeys`) would pin it down",
    "lift": "periods with and without {campaign}'s spend, at different levels, would pin it down",
    "half_life": "bursts of {campaign}'s spend with gaps between them would show how long "
    "its effect lasts",
    "half_saturation": "periods with higher {campaign} spend than so far would show where "
    "its effect levels off",
    "arrivals": "counts of the first stage would pin down how many people arrive",
    "season": "more than a year of data would separate the season from the trend",
}


def _z_table(fit: FittedFunnel) -> tuple[list[dict[str, str]], np.ndarray]:
    """Each prior-scaled parameter (name, kind, stage/campaign) and its standardised
    draws ``(D, P)`` (``z ~ Normal(0, 1)`` a priori)."""
    spec = json.loads(fit.idata.attrs["funnelsim_counts"])
    post = fit.idata.posterior
    info: list[dict[str, str]] = []
    cols: list[np.ndarray] = []
    stages = list(spec["stages"]) + ["lost"]
    for k, (edge, (i, _)) in enumerate(zip(spec["edge_names"], spec["edges"])):
        info.append({"parameter": f"rate {edge}", "kind": "rate", "stage": stages[i]})
        cols.append(_flat(post, "z_rate")[:, k])
    for f, name in enumerate(spec["effect_names"]):
        campaign = name.split(": ", 1)[0]
        info.append({"parameter": f"lift {name}", "kind": "lift", "campaign": campaign})
        cols.append(_flat(post, "z_lift")[:, f])
    for c, campaign in enumerate(spec["campaigns"]):
        info.append(
            {"parameter": f"half-life {campaign}", "kind": "half_life", "campaign": campaign}
        )
        cols.append(_flat(post, "z_half_life")[:, c])
        info.append(
            {
                "parameter": f"half-saturation {campaign}",
                "kind": "half_saturation",
                "campaign": campaign,
            }
        )
        cols.append(_flat(post, "z_half_saturation")[:, c])
    for g, seg in enumerate(spec["segments"]):
        label = "arrivals level" + (f" {seg}" if len(spec["segments"]) > 1 else "")
        info.append({"parameter": label, "kind": "arrivals"})
        cols.append(_flat(post, "z_level")[:, g])
    info.append({"parameter": "arrivals trend", "kind": "season"})
    cols.append(_flat(post, "trend") / spec["trend_sd"])
    for name in ("yearly", "weekly"):
        if name in post:
            z = _flat(post, name) / spec["seasonal_sd"]
            for r in range(z.shape[1]):
                info.append({"parameter": f"{name} season {r + 1}", "kind": "season"})
                cols.append(z[:, r])
    return info, np.array(cols).T


def identifiability(fit: FittedFunnel) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per parameter: ``parameter, contraction, verdict, hint`` — contraction is
    ``1 − (posterior sd / prior sd)²`` (1: the data fixed it; 0: the data said nothing);
    verdict ``pinned`` (≥ 0.9), ``informed`` or ``weak`` (< 0.5, mostly the prior). And the
    pairs of parameters whose posterior correlation is beyond ±0.7 (``a, b, correlation``):
    the data pin a combination of them, not each one."""
    info, z = _z_table(fit)
    sd = z.std(axis=0)
    contraction = 1.0 - sd**2
    rows = []
    for meta, value in zip(info, contraction):
        verdict = "pinned" if value >= PINNED else "informed" if value >= WEAK else "weak"
        hint = _HINTS[meta["kind"]].format(**meta) if verdict == "weak" else ""
        rows.append(
            {
                "parameter": meta["parameter"],
                "contraction": float(value),
                "verdict": verdict,
                "hint": hint,
            }
        )
    table = pd.DataFrame(rows, columns=["parameter", "contraction", "verdict", "hint"])
    pairs = []
    if z.shape[1] > 1 and len(z) > 2:
        with np.errstate(invalid="ignore", divide="ignore"):
            corr = np.corrcoef(z.T)
        for i in range(len(info)):
            for j in range(i + 1, len(info)):
                if abs(corr[i, j]) >= 0.7:
                    pairs.append(
                        {
                            "a": info[i]["parameter"],
                            "b": info[j]["parameter"],
                            "correlation": float(corr[i, j]),
                        }
                    )
    corr_table = pd.DataFrame(pairs, columns=["a", "b", "correlation"])
    return table, corr_table.sort_values("correlation", key=abs, ascending=False, ignore_index=True)


def identifiability_notes(fit: FittedFunnel) -> list[str]:
    """Plain-English warnings about what the counts cannot pin down."""
    table, pairs = identifiability(fit)
    notes = []
    weak = table[(table["verdict"] == "weak") & ~table["parameter"].str.contains("season")]
    for _, row in weak.iterrows():
        notes.append(
            f"{row['parameter']}: the counts barely inform it (prior uncertainty shrank by "
            f"{max(row['contraction'], 0.0):.0%}); {row['hint']}"
        )
    for _, row in pairs.head(5).iterrows():
        a, b, r = row["a"], row["b"], row["correlation"]
        same = a.startswith("rate ") and b.startswith("rate ") and a.split()[1] == b.split()[1]
        if same and r > 0:
            stage = a.split()[1]
            notes.append(
                f"{a} and {b} rise and fall together (posterior correlation {r:+.2f}): the "
                f"counts fix where people leaving {stage} go better than how long they stay"
            )
        else:
            notes.append(
                f"{a} and {b} trade off (posterior correlation {r:+.2f}): the data fix a "
                "combination of the two, not each one"
            )
    return notes
