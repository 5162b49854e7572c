"""A repeat stage fitted customer by customer: who is still there, and how much they will buy.

In a stage with a repeat edge (a second purchase keeps the customer in place) the
journey fit's rates are shared by everyone. Real customers differ: a few buy every
month, most buy once. This module fits the stage from each customer's own history,

* ``"gamma"``: customer *i* repeats at ``λ_i ~ Gamma(r, α)`` and drops out unseen at
  ``μ_i ~ Gamma(s, β)`` (the Pareto/NBD model; :mod:`funnelsim.inference.frailty`),
* ``"none"``: one ``λ`` and one ``μ`` for everyone (the journey fit's model of the
  stage, with rates constant in time),

both with the stage's observed exits (moving on to another stage, or a recorded
cancellation) at rates ``ν_j`` shared by everyone. A history is ``x`` repeats, the
time ``t_x`` of the last event in the stage (a repeat or a re-entry), the time ``T``
spent in the stage (visits put end to end) and whether the last visit ended by an
observed exit; identical histories are grouped.

**Priors** (log scale, so the sampler sees near-Gaussian, weakly correlated
parameters): ``ln r, ln s ~ Normal(0, 1.5)``; the mean repeat rate
``ln(r/α) ~ Normal(ln c_λ, 1.5)`` with ``c_λ`` = (repeats + ½) / days in the stage;
the mean drop-out rate ``ln(s/β) ~ Normal(ln c_μ, 2)`` with ``c_μ`` = 1 / mean days in
the stage; ``ν_j ~ Gamma(1, 1/c_j)`` with ``c_j`` = (exits to j + ½) / days in the stage.
The homogeneous model puts the same priors on ``ln λ`` and ``ln μ``.

A :class:`RepeatModel` gives, per posterior draw and customer, the log-likelihood
(for LOO), P(still in the stage) and expected repeats over a horizon, and simulates
what customers do next (for forecasts and backtests).

>>> import numpy as np
>>> ids = np.array([1, 1, 1, 2])
>>> ns = np.array([0, 2, 5, 1]) * DAY_NS
>>> stage = np.array(["buy", "buy", "buy", "buy"], dtype=object)
>>> h = repeat_histories(ids, ns, stage, "buy", end_ns=10 * DAY_NS)
>>> h.x.tolist(), h.t_x.tolist(), h.T.tolist()
([2, 0], [5.0, 0.0], [10.0, 9.0])
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from funnelsim.inference import frailty

__all__ = [
    "DAY_NS",
    "HETEROGENEITY",
    "RepeatHistories",
    "RepeatModel",
    "compare_loo",
    "fit_repeat_stage",
    "loo_text",
    "planner_summary",
    "repeat_histories",
]

DAY_NS = 86_400 * 10**9
HETEROGENEITY = ("none", "gamma")
#: posterior draws used per chunk when evaluating per-customer quantities
_CHUNK = 16


@dataclass(frozen=True, eq=False)
class RepeatHistories:
    """Each customer's history in one repeat stage (see the module docstring)."""

    stage: str
    customer_id: np.ndarray
    x: np.ndarray  # int repeats
    t_x: np.ndarray  # days in the stage up to the last event in it
    T: np.ndarray  # days in the stage in all
    exited: np.ndarray  # bool: the last visit ended by an observed exit
    targets: tuple[str, ...]  # stages the observed exits go to
    exits: np.ndarray  # (n, J) int observed exits per customer and target

    def __len__(self) -> int:
        return len(self.x)

    def to_dataset(self) -> xr.Dataset:
        """The histories as a Dataset (kept in a fit's ``constant_data``)."""
        ids = self.customer_id
        ids = ids.astype(str) if ids.dtype.kind == "O" else ids
        return xr.Dataset(
            {
                "repeat_x": ("repeat_customer", self.x.astype(np.int64)),
                "repeat_t_x": ("repeat_customer", self.t_x),
                "repeat_T": ("repeat_customer", self.T),
                "repeat_exited": ("repeat_customer", self.exited.astype(np.int8)),
                "repeat_exits": (("repeat_customer", "exit"), self.exits.astype(np.int64)),
            },
            coords={"repeat_customer": ids, "exit": list(self.targets)},
            attrs={"repeat_stage": self.stage},
        )

    @classmethod
    def from_dataset(cls, ds: xr.Dataset, stage: str) -> RepeatHistories:
        return cls(
            stage=stage,
            customer_id=np.asarray(ds["repeat_customer"].values),
            x=np.asarray(ds["repeat_x"].values, dtype=np.int64),
            t_x=np.asarray(ds["repeat_t_x"].values, dtype=float),
            T=np.asarray(ds["repeat_T"].values, dtype=float),
            exited=np.asarray(ds["repeat_exited"].values) > 0,
            targets=tuple(str(t) for t in ds["exit"].values),
            exits=np.asarray(ds["repeat_exits"].values, dtype=np.int64).reshape(
                len(ds["repeat_customer"]), len(ds["exit"])
            ),
        )

    def grouped(self) -> tuple[np.ndarray, np.ndarray]:
        """Distinct ``(x, t_x, T, exited)`` rows and how many customers share each."""
        table = np.column_stack([self.x, self.t_x, self.T, self.exited])
        rows, counts = np.unique(table, axis=0, return_counts=True)
        return rows, counts


def repeat_histories(
    ids: np.ndarray, ns: np.ndarray, stage: np.ndarray, name: str, *, end_ns: int
) -> RepeatHistories:
    """Histories in stage ``name`` from event rows (each customer's rows in time order;
    ``ns`` in nanoseconds, ``end_ns`` the end of the data)."""
    codes, uniques = pd.factorize(pd.Series(ids, dtype=object))
    order = np.argsort(codes, kind="stable")
    c, t, z = codes[order], np.asarray(ns, dtype=np.int64)[order], np.asarray(stage)[order]
    same_next = np.r_[c[1:] == c[:-1], False]
    same_prev = np.r_[False, c[1:] == c[:-1]]
    t_next = np.where(same_next, np.r_[t[1:], 0], end_ns)
    z_next = np.where(same_next, np.r_[z[1:], None], None)
    z_prev = np.where(same_prev, np.r_[None, z[:-1]], None)
    here = z == name
    rows = np.flatnonzero(here)
    cust = c[rows]
    dur = (t_next[rows] - t[rows]) / DAY_NS
    start = np.cumsum(dur) - dur  # days in the stage before each visit's event, running
    who, first, n_rows = np.unique(cust, return_index=True, return_counts=True)
    last = first + n_rows - 1
    start = start - start[first].repeat(n_rows)  # from the customer's first entry
    repeat = z_prev[rows] == name
    leave = same_next[rows] & (z_next[rows] != name)
    targets = tuple(sorted({str(v) for v in z_next[rows][leave]}))
    exits = np.zeros((len(who), len(targets)), dtype=np.int64)
    if targets:
        k = np.searchsorted(who, cust[leave])
        j = np.searchsorted(np.array(targets, dtype=object), z_next[rows][leave].astype(str))
        np.add.at(exits, (k, j), 1)
    total = np.add.reduceat(dur, first) if len(rows) else np.zeros(0)
    return RepeatHistories(
        stage=name,
        customer_id=np.asarray(uniques, dtype=object)[who],
        x=np.bincount(np.searchsorted(who, cust[repeat]), minlength=len(who)),
        t_x=np.minimum(start[last], total),  # equal sums in another order may differ by 1 ulp
        T=total,
        exited=leave[last],
        targets=targets,
        exits=exits,
    )


# --------------------------------------------------------------------- the models
def homogeneous_terms(x, t_x, T, lam, mu, nu, op=np):
    """Logs of "still there at ``T``" and "dropped out unseen after ``t_x``" with one
    ``λ``, ``μ`` (and total exit rate ``ν``) for everyone (numpy or PyTensor)."""
    k = lam + mu + nu
    alive = x * op.log(lam) - k * T
    gap = T - t_x
    silent = x * op.log(lam) + op.log(mu) - k * t_x + op.log(-op.expm1(-k * gap) / k + 1e-300)
    return alive, silent


def _loglik_rows(kind: str, p: Mapping[str, Any], x, t_x, T, exited, op=np):
    """Per-history log-likelihood without the exits' ``ν_j`` factors."""
    nu = p["nu"]
    if kind == "gamma":
        ll = frailty.repeat_loglik(
            x, t_x, T, p["r"], p["alpha"], p["s"], p["beta"], nu=nu, exited=exited
        )
        safe = op.log(op.where(nu > 0, nu, 1.0))
        return ll - exited * safe
    alive, silent = homogeneous_terms(x, t_x, T, p["lam"], p["mu"], nu, op)
    return op.where(exited > 0, alive, op.logaddexp(alive, silent))


def _centres(h: RepeatHistories) -> dict[str, Any]:
    days = max(float(h.T.sum()), 1e-9)
    return {
        "lam": (float(h.x.sum()) + 0.5) / days,
        "mu": 1.0 / max(float(h.T.mean()), 1e-9),
        "nu": (h.exits.sum(axis=0) + 0.5) / days,
    }


def fit_repeat_stage(
    h: RepeatHistories,
    heterogeneity: str = "gamma",
    *,
    sampler: str = "nutpie",
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    seed: int | None = None,
    progress: bool = False,
) -> xr.Dataset:
    """Posterior of the stage's model (``"gamma"`` or ``"none"``) by NUTS.

    Returns a Dataset over ``(chain, draw)``: ``repeat_r, repeat_alpha, dropout_s,
    dropout_beta`` (gamma) or ``repeat_lambda, dropout_mu`` (none), and
    ``stage_exit_rate`` over ``exit`` (the targets of observed exits), with
    ``attrs["diverging"]``.
    """
    import pymc as pm
    import pytensor.tensor as pt

    from funnelsim.inference.sampling import sample

    if heterogeneity not in HETEROGENEITY:
        raise ValueError(f"heterogeneity must be one of {HETEROGENEITY}")
    rows, weight = h.grouped()
    c = _centres(h)
    with pm.Model() as model:
        # data as pm.Data: the compiled model is reused for any data of this layout
        x, t_x, T, exited, w = (
            pm.Data(name, values)
            for name, values in zip(
                ("x", "t_x", "T", "exited", "weight"), (*rows.T, weight.astype(float)), strict=True
            )
        )
        if heterogeneity == "gamma":
            log_r = pm.Normal("log_r", 0.0, 1.5)
            log_m = pm.Normal(
                "log_mean_repeat", pm.Data("log_centre_repeat", np.log(c["lam"])), 1.5
            )
            log_s = pm.Normal("log_s", 0.0, 1.5)
            log_d = pm.Normal(
                "log_mean_dropout", pm.Data("log_centre_dropout", np.log(c["mu"])), 2.0
            )
            p = {"r": pt.exp(log_r), "s": pt.exp(log_s)}
            p["alpha"] = p["r"] / pt.exp(log_m)
            p["beta"] = p["s"] / pt.exp(log_d)
        else:
            log_lam = pm.Normal("log_lambda", pm.Data("log_centre_repeat", np.log(c["lam"])), 1.5)
            log_mu = pm.Normal("log_mu", pm.Data("log_centre_dropout", np.log(c["mu"])), 2.0)
            p = {"lam": pt.exp(log_lam), "mu": pt.exp(log_mu)}
        if len(h.targets):
            rate = pm.Data("exit_prior_rate", 1.0 / c["nu"])
            n_exit = pm.Data("exits", h.exits.sum(axis=0).astype(float))
            nu_j = pm.Gamma("stage_exit_rate", 1.0, rate, shape=len(h.targets))
            p["nu"] = nu_j.sum()
            exits_term = (n_exit * pt.log(nu_j)).sum()
        else:
            p["nu"] = pt.as_tensor_variable(0.0)
            exits_term = 0.0
        ll = _loglik_rows(heterogeneity, p, x, t_x, T, exited, op=_pt_ops())
        pm.Potential("loglik", (w * ll).sum() + exits_term)
        names = {
            "gamma": {"repeat_r": "r", "repeat_alpha": "alpha", "dropout_s": "s",
                      "dropout_beta": "beta"},
            "none": {"repeat_lambda": "lam", "dropout_mu": "mu"},
        }[heterogeneity]  # fmt: skip
        for out, key in names.items():
            pm.Deterministic(out, p[key])
    idata = sample(
        model, sampler=sampler, draws=draws, tune=tune, chains=chains, seed=seed,
        progress=progress,
    )  # fmt: skip
    keep = list(names) + (["stage_exit_rate"] if len(h.targets) else [])
    post = idata["posterior"][keep]
    if "stage_exit_rate" in post:
        dim = [d for d in post["stage_exit_rate"].dims if d not in ("chain", "draw")][0]
        post = post.rename({dim: "exit"}).assign_coords(exit=list(h.targets))
    post = post.drop_vars([v for v in post.coords if v not in ("chain", "draw", "exit")])
    div = 0
    stats = getattr(idata, "sample_stats", None)
    if stats is not None and "diverging" in stats:
        div = int(stats["diverging"].values.sum())
    post.attrs = {"diverging": div, "sampler": str(idata.attrs.get("sampler", sampler))}
    return post


def _pt_ops() -> Any:
    import pytensor.tensor as pt

    class Ops:
        log, exp, expm1, logaddexp, where = pt.log, pt.exp, pt.expm1, pt.logaddexp, pt.switch

    return Ops


class RepeatModel:
    """Posterior draws of a repeat stage's model, for per-customer questions.

    ``posterior`` is the Dataset of :func:`fit_repeat_stage` (or the same variables
    in a fit's posterior); ``kind`` is ``"gamma"`` or ``"none"``.
    """

    def __init__(self, posterior: xr.Dataset, kind: str, max_draws: int | None = None) -> None:
        if kind not in HETEROGENEITY:
            raise ValueError(f"kind must be one of {HETEROGENEITY}")
        self.kind = kind
        names = (
            ("repeat_r", "repeat_alpha", "dropout_s", "dropout_beta")
            if kind == "gamma"
            else ("repeat_lambda", "dropout_mu")
        )
        keys = ("r", "alpha", "s", "beta") if kind == "gamma" else ("lam", "mu")
        flat = {
            k: np.asarray(posterior[n].values, dtype=float).reshape(-1)
            for k, n in zip(keys, names, strict=True)
        }
        if "stage_exit_rate" in posterior:
            nu = np.asarray(posterior["stage_exit_rate"].values, dtype=float)
            nu_j = nu.reshape(-1, nu.shape[-1])
        else:
            nu_j = np.zeros((len(flat[keys[0]]), 0))
        flat["nu"] = nu_j.sum(axis=1)
        n = len(flat["nu"])
        if max_draws is not None and n > max_draws:
            pick = np.linspace(0, n - 1, max_draws).round().astype(int)
            flat = {k: v[pick] for k, v in flat.items()}
            nu_j = nu_j[pick]
        self.params = flat
        self.nu_j = nu_j

    @property
    def n_draws(self) -> int:
        return len(self.params["nu"])

    def _chunks(self):
        for lo in range(0, self.n_draws, _CHUNK):
            yield lo, {k: v[lo : lo + _CHUNK, None] for k, v in self.params.items()}

    def loglik(self, h: RepeatHistories) -> np.ndarray:
        """Log-likelihood ``(draws, customers)`` of each customer's history (exits'
        factors included), for LOO."""
        out = np.empty((self.n_draws, len(h)))
        safe = np.log(np.where(self.nu_j > 0, self.nu_j, 1.0))
        ex = h.exited.astype(float)
        for lo, p in self._chunks():
            out[lo : lo + _CHUNK] = _loglik_rows(self.kind, p, h.x, h.t_x, h.T, ex)
        return out + safe @ h.exits.T.astype(float)

    def p_alive(self, h: RepeatHistories) -> np.ndarray:
        """P(still in the stage at the end of the data) ``(draws, customers)``; 0 for a
        customer whose last visit ended by an observed exit."""
        out = np.empty((self.n_draws, len(h)))
        for lo, p in self._chunks():
            if self.kind == "gamma":
                a = frailty.p_alive(
                    h.x, h.t_x, h.T, p["r"], p["alpha"], p["s"], p["beta"], nu=p["nu"]
                )
            else:
                alive, silent = homogeneous_terms(h.x, h.t_x, h.T, p["lam"], p["mu"], p["nu"])
                a = np.exp(alive - np.logaddexp(alive, silent))
            out[lo : lo + _CHUNK] = np.where(h.exited, 0.0, a)
        return out

    def expected_repeats(self, h: RepeatHistories, horizon: float) -> np.ndarray:
        """Expected repeats in the next ``horizon`` days ``(draws, customers)``."""
        alive = self.p_alive(h) if self.kind == "none" else np.zeros(0)
        out = np.empty((self.n_draws, len(h)))
        for lo, p in self._chunks():
            end = lo + _CHUNK
            if self.kind == "gamma":
                out[lo:end] = np.where(h.exited, 0.0, frailty.expected_repeats(
                    horizon, h.x, h.t_x, h.T, p["r"], p["alpha"], p["s"], p["beta"], nu=p["nu"]
                ))  # fmt: skip
                continue
            leave = p["mu"] + p["nu"]
            out[lo:end] = alive[lo:end] * p["lam"] * -np.expm1(-leave * horizon) / leave
        return out

    def simulate(self, h: RepeatHistories, horizon: float, rng: np.random.Generator) -> np.ndarray:
        """Repeats each customer makes in the next ``horizon`` days ``(draws,
        customers)``: one simulated future per posterior draw (who is still there,
        their own rates given their history, when they leave)."""
        alive = rng.random((self.n_draws, len(h))) < self.p_alive(h)
        p = {k: v[:, None] for k, v in self.params.items()}
        if self.kind == "gamma":
            lam = rng.gamma(p["r"] + h.x, 1.0 / (p["alpha"] + h.T))
            mu = rng.gamma(p["s"] + 0.0 * h.x, 1.0 / (p["beta"] + h.T))
        else:
            lam = np.broadcast_to(p["lam"], alive.shape)
            mu = np.broadcast_to(p["mu"], alive.shape)
        leave = rng.exponential(1.0, alive.shape) / np.maximum(mu + p["nu"], 1e-300)
        active = np.where(alive, np.minimum(leave, horizon), 0.0)
        return rng.poisson(lam * active)


def compare_loo(models: Mapping[str, RepeatModel], h: RepeatHistories) -> dict[str, Any]:
    """PSIS-LOO of each model on the customers' histories (ArviZ), best first:
    ``{"models": {name: {"elpd", "se", "p_loo", "bad_k"}}, "best", "diff", "diff_se"}``
    (``diff``: the best model's elpd minus the other's, with its standard error)."""
    import arviz as az

    pointwise = {}
    out: dict[str, Any] = {"models": {}}
    for name, m in models.items():
        ll = m.loglik(h)
        data = az.from_dict(
            posterior={"draw_index": np.arange(len(ll), dtype=float)[None]},
            log_likelihood={"history": ll[None]},
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            loo = az.loo(data, pointwise=True)
        pointwise[name] = np.asarray(loo.loo_i.values)
        out["models"][name] = {
            "elpd": float(loo.elpd_loo),
            "se": float(loo.se),
            "p_loo": float(loo.p_loo),
            "bad_k": int((np.asarray(loo.pareto_k.values) > 0.7).sum()),
        }
    ranked = sorted(out["models"], key=lambda k: -out["models"][k]["elpd"])
    out["best"] = ranked[0]
    if len(ranked) > 1:
        d = pointwise[ranked[0]] - pointwise[ranked[1]]
        out["diff"] = float(d.sum())
        out["diff_se"] = float(np.sqrt(len(d) * d.var()))
    return out


def loo_text(result: Mapping[str, Any]) -> str:
    """One plain-English line comparing the models of :func:`compare_loo`."""
    names = {"gamma": "customers differ (gamma)", "none": "everyone alike"}
    best = result["best"]
    if "diff" not in result:
        return f"LOO: {names.get(best, best)} only"
    other = next(k for k in result["models"] if k != best)
    z = result["diff"] / max(result["diff_se"], 1e-12)
    verdict = "clearly better" if z > 2 else "not clearly better"
    return (
        f"LOO: '{names.get(best, best)}' fits held-out customers better than "
        f"'{names.get(other, other)}' by {result['diff']:.1f} ± {result['diff_se']:.1f} "
        f"(elpd) — {verdict}"
    )


def planner_summary(model: RepeatModel, prob: float = 0.94) -> pd.DataFrame:
    """The stage's customers in a planner's terms, per model: repeats per 30 days of
    the average customer, the share of all repeats made by the most frequent 20% of
    customers, and the median days until a customer drops out unseen. Columns
    ``quantity, mean, low, high`` (an equal-tailed ``prob`` interval)."""
    from scipy import special

    p = model.params
    if model.kind == "gamma":
        per30 = 30.0 * p["r"] / p["alpha"]
        top = 1.0 - special.gammainc(p["r"] + 1.0, special.gammaincinv(p["r"], 0.8))
        life = p["beta"] * np.expm1(np.log(2.0) / p["s"])
    else:
        per30 = 30.0 * p["lam"]
        top = np.full_like(per30, 0.2)
        life = np.log(2.0) / p["mu"]
    tail = (1.0 - prob) / 2.0
    rows = []
    for name, v in (
        ("repeats per 30 days, average customer", per30),
        ("repeats made by the top 20% of customers", top),
        ("median days until dropping out unseen", life),
    ):
        lo, hi = np.quantile(v, [tail, 1.0 - tail])
        rows.append(
            {"quantity": name, "mean": float(v.mean()), "low": float(lo), "high": float(hi)}
        )
    return pd.DataFrame(rows)
