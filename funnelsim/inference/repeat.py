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
from scipy import special

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
HETEROGENEITY = ("none", "gamma", "classes:K")
#: most latent classes a fit may ask for
MAX_CLASSES = 8


def parse_heterogeneity(text: str) -> tuple[str, int]:
    """``"none"``, ``"gamma"`` or ``"classes:K"`` (2 ≤ K ≤ 8) as ``(kind, K)``; raises
    ValueError with the reason.

    >>> parse_heterogeneity("classes:3"), parse_heterogeneity("gamma")
    (('classes', 3), ('gamma', 0))
    """
    if text in ("none", "gamma"):
        return text, 0
    head, _, k = text.partition(":")
    if head == "classes" and k.isdigit() and 2 <= int(k) <= MAX_CLASSES:
        return "classes", int(k)
    raise ValueError(
        f"heterogeneity must be none, gamma or classes:K with K from 2 to {MAX_CLASSES}, "
        f"not {text!r}"
    )


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


def _loglik_rows(kind: str, p: Mapping[str, Any], x, t_x, T, exited, op=None):
    """Per-history log-likelihood without the exits' ``ν_j`` factors."""
    op = op or frailty._ops(x)  # numpy, or PyTensor for a model's data
    nu = p["nu"]
    if kind == "gamma":
        ll = frailty.repeat_loglik(
            x, t_x, T, p["r"], p["alpha"], p["s"], p["beta"], nu=nu, exited=exited
        )
        safe = op.log(op.where(nu > 0, nu, 1.0))
        return ll - exited * safe
    if kind.startswith("classes"):  # per class (…, n, K), mixed with the class weights
        alive, silent = homogeneous_terms(
            x[..., None], t_x[..., None], T[..., None], p["lam"], p["mu"], nu[..., None], op
        )
        per_class = op.where(exited[..., None] > 0, alive, op.logaddexp(alive, silent))
        return op.logsumexp(p["logw"] + per_class)
    alive, silent = homogeneous_terms(x, t_x, T, p["lam"], p["mu"], nu, op)
    return op.where(exited > 0, alive, op.logaddexp(alive, silent))


def _class_terms(p: Mapping[str, Any], h: RepeatHistories):
    """For a classes model: per draw, customer and class ``(…, n, K)``, the logs of
    "in class k and still there" and of "in class k" given the history (numpy)."""
    alive, silent = homogeneous_terms(
        h.x[:, None], h.t_x[:, None], h.T[:, None], p["lam"], p["mu"], p["nu"][..., None]
    )
    joint = np.where(h.exited[:, None], alive, np.logaddexp(alive, silent))
    total = special.logsumexp(p["logw"] + joint, axis=-1, keepdims=True)
    return p["logw"] + alive - total, p["logw"] + joint - total


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
    """Posterior of the stage's model (``"gamma"``, ``"none"`` or ``"classes:K"``) by NUTS.

    Returns a Dataset over ``(chain, draw)``: ``repeat_r, repeat_alpha, dropout_s,
    dropout_beta`` (gamma), ``repeat_lambda, dropout_mu`` (none) or ``class_weight,
    class_repeat_rate, class_dropout_rate`` over ``class`` (classes, ordered by repeat
    rate: K personas, each with one repeat and one drop-out rate), and
    ``stage_exit_rate`` over ``exit`` (the targets of observed exits), with
    ``attrs["diverging"]``.
    """
    import pymc as pm
    import pytensor.tensor as pt

    from funnelsim.inference.sampling import sample

    kind, n_classes = parse_heterogeneity(heterogeneity)
    rows, weight = h.grouped()
    c = _centres(h)
    with pm.Model(coords={"class": np.arange(n_classes)}) as model:
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
        elif kind == "classes":  # ordered repeat rates: class 0 repeats least
            from pymc.distributions.transforms import ordered

            spread = np.linspace(-1.5, 1.5, n_classes)
            log_lam = pm.Normal(
                "log_lambda_classes", pm.Data("log_centre_repeat", np.log(c["lam"])), 2.0,
                dims="class", transform=ordered, initval=np.log(c["lam"]) + spread,
            )  # fmt: skip
            log_mu = pm.Normal(
                "log_mu_classes", pm.Data("log_centre_dropout", np.log(c["mu"])), 2.0, dims="class"
            )
            weights = pm.Dirichlet("class_weights", np.full(n_classes, 2.0), dims="class")
            p = {"lam": pt.exp(log_lam), "mu": pt.exp(log_mu), "w": weights}
            p["logw"] = pt.log(weights)
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
        ll = _loglik_rows(kind, p, x, t_x, T, exited)
        pm.Potential("loglik", (w * ll).sum() + exits_term)
        names = _NAMES[kind]
        for out, key in names.items():
            pm.Deterministic(out, p[key], dims="class" if kind == "classes" else None)
    idata = sample(
        model, sampler=sampler, draws=draws, tune=tune, chains=chains, seed=seed,
        progress=progress,
    )  # fmt: skip
    keep = list(names) + (["stage_exit_rate"] if len(h.targets) else [])
    post = idata["posterior"][keep]
    if "stage_exit_rate" in post:
        dim = [d for d in post["stage_exit_rate"].dims if d not in ("chain", "draw")][0]
        post = post.rename({dim: "exit"}).assign_coords(exit=list(h.targets))
    post = post.drop_vars([v for v in post.coords if v not in ("chain", "draw", "exit", "class")])
    by_chain = np.zeros(post.sizes["chain"], dtype=int)
    stats = getattr(idata, "sample_stats", None)
    if stats is not None and "diverging" in stats:
        by_chain = stats["diverging"].values.reshape(post.sizes["chain"], -1).sum(axis=1)
    post.attrs = {
        "diverging": int(by_chain.sum()),
        "sampler": str(idata.attrs.get("sampler", sampler)),
    }
    if kind == "classes" and post.sizes["chain"] > 1:
        post = _drop_stuck_chains(post, h, heterogeneity)
        kept = [c for c in range(len(by_chain)) if c not in post.attrs.get("dropped_chains", [])]
        post.attrs["diverging"] = int(by_chain[kept].sum())  # the kept chains' own
    return post


#: a chain whose mean log-likelihood is this much below the best chain's (and 5 of its
#: posterior sd) sits in a poorer local mode of a mixture: its posterior mass is
#: smaller by a factor of about e^gap
MODE_GAP = 10.0


def _drop_stuck_chains(post: xr.Dataset, h: RepeatHistories, kind: str) -> xr.Dataset:
    """A mixture of classes can have more than one explanation of the same customers
    (e.g. a class that never comes back). Chains that settled in a clearly poorer one
    (mean total log-likelihood more than :data:`MODE_GAP`, and 5 posterior sd, below
    the best chain's) are left out and recorded in ``attrs["dropped_chains"]`` with
    the gap in ``attrs["mode_gap"]``."""
    n_chain, n_draw = post.sizes["chain"], post.sizes["draw"]
    total = RepeatModel(post, kind).loglik(h).sum(axis=1).reshape(n_chain, n_draw)
    means, sds = total.mean(axis=1), total.std(axis=1)
    best = int(means.argmax())
    gap = means[best] - means
    drop = [c for c in range(n_chain) if gap[c] > max(MODE_GAP, 5.0 * max(sds[best], sds[c]))]
    if not drop:
        return post
    keep = [c for c in range(n_chain) if c not in drop]
    attrs = dict(post.attrs) | {
        "dropped_chains": drop,
        "mode_gap": float(gap[drop].min()),
    }
    out = post.isel(chain=keep).assign_coords(chain=np.arange(len(keep)))
    out.attrs = attrs
    return out


#: posterior variable → parameter, per model
_NAMES = {
    "gamma": {"repeat_r": "r", "repeat_alpha": "alpha", "dropout_s": "s", "dropout_beta": "beta"},
    "none": {"repeat_lambda": "lam", "dropout_mu": "mu"},
    "classes": {"class_weight": "w", "class_repeat_rate": "lam", "class_dropout_rate": "mu"},
}


class RepeatModel:
    """Posterior draws of a repeat stage's model, for per-customer questions.

    ``posterior`` is the Dataset of :func:`fit_repeat_stage` (or the same variables
    in a fit's posterior); ``kind`` is ``"gamma"``, ``"none"`` or ``"classes:K"``
    (``"classes"`` alone takes K from the posterior).
    """

    def __init__(self, posterior: xr.Dataset, kind: str, max_draws: int | None = None) -> None:
        self.kind = "classes" if kind.startswith("classes") else parse_heterogeneity(kind)[0]
        names = _NAMES[self.kind]
        flat = {}
        for name, key in names.items():
            values = np.asarray(posterior[name].values, dtype=float)
            flat[key] = values.reshape(-1, *values.shape[2:])
        n = len(next(iter(flat.values())))
        if "stage_exit_rate" in posterior:
            nu = np.asarray(posterior["stage_exit_rate"].values, dtype=float)
            nu_j = nu.reshape(-1, nu.shape[-1])
        else:
            nu_j = np.zeros((n, 0))
        flat["nu"] = nu_j.sum(axis=1)
        if self.kind == "classes":
            flat["logw"] = np.log(flat["w"])
        if max_draws is not None and n > max_draws:
            pick = np.linspace(0, n - 1, max_draws).round().astype(int)
            flat = {k: v[pick] for k, v in flat.items()}
            nu_j = nu_j[pick]
        self.params = flat
        self.nu_j = nu_j

    @property
    def n_draws(self) -> int:
        return len(self.params["nu"])

    @property
    def label(self) -> str:
        """How the model is named in tables: ``gamma``, ``none`` or ``classes:K``."""
        return f"classes:{self.params['w'].shape[1]}" if self.kind == "classes" else self.kind

    def _chunks(self):
        """Draws in chunks, scalars as ``(chunk, 1)`` and class vectors ``(chunk, 1, K)``."""
        for lo in range(0, self.n_draws, _CHUNK):
            yield (
                lo,
                {
                    k: v[lo : lo + _CHUNK, None] if v.ndim == 1 else v[lo : lo + _CHUNK, None, :]
                    for k, v in self.params.items()
                },
            )

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
            elif self.kind == "classes":
                a = np.exp(special.logsumexp(_class_terms(p, h)[0], axis=-1))
            else:
                alive, silent = homogeneous_terms(h.x, h.t_x, h.T, p["lam"], p["mu"], p["nu"])
                a = np.exp(alive - np.logaddexp(alive, silent))
            out[lo : lo + _CHUNK] = np.where(h.exited, 0.0, a)
        return out

    def expected_repeats(self, h: RepeatHistories, horizon: float) -> np.ndarray:
        """Expected repeats in the next ``horizon`` days ``(draws, customers)``."""
        out = np.empty((self.n_draws, len(h)))
        for lo, p in self._chunks():
            end = lo + _CHUNK
            if self.kind == "gamma":
                out[lo:end] = np.where(h.exited, 0.0, frailty.expected_repeats(
                    horizon, h.x, h.t_x, h.T, p["r"], p["alpha"], p["s"], p["beta"], nu=p["nu"]
                ))  # fmt: skip
                continue
            if self.kind == "classes":
                weight = np.exp(_class_terms(p, h)[0])  # P(class k and still there)
                nu = p["nu"][..., None]
            else:
                alive, silent = homogeneous_terms(h.x, h.t_x, h.T, p["lam"], p["mu"], p["nu"])
                weight = np.exp(alive - np.logaddexp(alive, silent))
                nu = p["nu"]
            leave = p["mu"] + nu
            each = weight * p["lam"] * -np.expm1(-leave * horizon) / leave
            each = each.sum(axis=-1) if self.kind == "classes" else each
            out[lo:end] = np.where(h.exited, 0.0, each)
        return out

    def draw_rates(
        self, h: RepeatHistories, rng: np.random.Generator, draw: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Each customer's own repeat and drop-out rates ``(draws, customers)`` given
        their history *and that they are still there* (gamma: ``Gamma(r + x, α + T)``
        and ``Gamma(s, β + T)``; classes: the rates of a class drawn from its
        posterior; none: the one rate). ``draw`` picks posterior draws (default: all)."""
        idx = np.arange(self.n_draws) if draw is None else np.asarray(draw)
        p = {k: v[idx, None] if v.ndim == 1 else v[idx, None, :] for k, v in self.params.items()}
        shape = (len(idx), len(h))
        if self.kind == "gamma":
            return (
                rng.gamma(p["r"] + h.x, 1.0 / (p["alpha"] + h.T)),
                rng.gamma(p["s"] + 0.0 * h.x, 1.0 / (p["beta"] + h.T)),
            )
        if self.kind == "none":
            return np.broadcast_to(p["lam"], shape).copy(), np.broadcast_to(p["mu"], shape).copy()
        alive_k = _class_terms(p, h)[0]  # (D, n, K): P(class k and still there), in logs
        prob = np.exp(alive_k - special.logsumexp(alive_k, axis=-1, keepdims=True))
        k = (prob.cumsum(axis=-1) < rng.random(shape)[..., None]).sum(axis=-1)
        k = np.minimum(k, prob.shape[-1] - 1)
        lam = np.take_along_axis(np.broadcast_to(p["lam"], prob.shape), k[..., None], -1)
        mu = np.take_along_axis(np.broadcast_to(p["mu"], prob.shape), k[..., None], -1)
        return lam[..., 0], mu[..., 0]

    def draw_population(
        self, draw: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """Rates of new customers, one per entry of ``draw`` (posterior draw indices):
        drawn from the population (the gamma distributions, or a class by its weight)."""
        p = {k: v[draw] for k, v in self.params.items()}
        if self.kind == "gamma":
            return rng.gamma(p["r"], 1.0 / p["alpha"]), rng.gamma(p["s"], 1.0 / p["beta"])
        if self.kind == "none":
            return p["lam"].copy(), p["mu"].copy()
        k = (p["w"].cumsum(axis=-1) < rng.random(len(draw))[:, None]).sum(axis=-1)
        k = np.minimum(k, p["w"].shape[-1] - 1)
        rows = np.arange(len(draw))
        return p["lam"][rows, k], p["mu"][rows, k]

    def simulate(self, h: RepeatHistories, horizon: float, rng: np.random.Generator) -> np.ndarray:
        """Repeats each customer makes in the next ``horizon`` days ``(draws,
        customers)``: one simulated future per posterior draw (who is still there,
        their own rates given their history, when they leave)."""
        alive = rng.random((self.n_draws, len(h))) < self.p_alive(h)
        lam, mu = self.draw_rates(h, rng)
        leave = rng.exponential(1.0, alive.shape) / np.maximum(
            mu + self.params["nu"][:, None], 1e-300
        )
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
    for name in ranked:  # each model against the best, over the same customers
        d = pointwise[ranked[0]] - pointwise[name]
        out["models"][name] |= {"diff": float(d.sum()), "diff_se": float(np.sqrt(len(d) * d.var()))}
    if len(ranked) > 1:
        out["diff"] = out["models"][ranked[1]]["diff"]
        out["diff_se"] = out["models"][ranked[1]]["diff_se"]
    return out


def model_name(kind: str) -> str:
    """How a model is called in tables and notes."""
    if kind.startswith("classes"):
        k = kind.partition(":")[2]
        return f"{k} kinds of customer" if k else "kinds of customer"
    return {"gamma": "customers differ", "none": "everyone alike"}.get(kind, kind)


def loo_text(result: Mapping[str, Any]) -> str:
    """Plain English comparing the models of :func:`compare_loo`: the best, and how far
    behind each other model is (elpd difference ± its standard error)."""
    best = result["best"]
    models = result["models"]
    if len(models) == 1:
        return f"LOO: '{model_name(best)}' only"
    others = sorted((k for k in models if k != best), key=lambda k: models[k]["diff"])
    parts = []
    for k in others:
        m = models[k]
        clear = "clearly" if m["diff"] > 2 * max(m["diff_se"], 1e-12) else "not clearly"
        parts.append(
            f"{clear} better than '{model_name(k)}' (by {m['diff']:.1f} ± {m['diff_se']:.1f})"
        )
    return f"LOO: '{model_name(best)}' fits held-out customers best, " + "; ".join(parts)


def _mixture_median_life(w: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """Median of a mixture of exponentials ``Σ w_k e^{−μ_k t} = ½`` per draw (bisection
    in log time)."""
    lo = np.full(len(w), np.log(np.log(2.0) / mu.max(axis=1)))
    hi = np.full(len(w), np.log(np.log(2.0) / mu.min(axis=1)))
    for _ in range(60):
        mid = (lo + hi) / 2.0
        above = (w * np.exp(-mu * np.exp(mid)[:, None])).sum(axis=1) > 0.5
        lo, hi = np.where(above, mid, lo), np.where(above, hi, mid)
    return np.exp((lo + hi) / 2.0)


def _top_share(w: np.ndarray, lam: np.ndarray, top: float = 0.2) -> np.ndarray:
    """Share of all repeats made by the ``top`` most frequent customers, classes ``(D, K)``."""
    order = np.argsort(-lam, axis=1)
    ws, ls = np.take_along_axis(w, order, 1), np.take_along_axis(lam, order, 1)
    before = np.cumsum(ws, axis=1) - ws
    taken = np.clip(top - before, 0.0, ws)
    return (taken * ls).sum(axis=1) / (w * lam).sum(axis=1)


def planner_summary(model: RepeatModel, prob: float = 0.94) -> pd.DataFrame:
    """The stage's customers in a planner's terms, per model: repeats per 30 days of
    the average customer, the share of all repeats made by the most frequent 20% of
    customers, and the median days until a customer drops out unseen. Columns
    ``quantity, mean, low, high`` (an equal-tailed ``prob`` interval)."""
    p = model.params
    if model.kind == "gamma":
        per30 = 30.0 * p["r"] / p["alpha"]
        top = 1.0 - special.gammainc(p["r"] + 1.0, special.gammaincinv(p["r"], 0.8))
        life = p["beta"] * np.expm1(np.log(2.0) / p["s"])
    elif model.kind == "classes":
        per30 = 30.0 * (p["w"] * p["lam"]).sum(axis=1)
        top = _top_share(p["w"], p["lam"])
        life = _mixture_median_life(p["w"], p["mu"])
    else:
        per30 = 30.0 * p["lam"]
        top = np.full_like(per30, 0.2)
        life = np.log(2.0) / p["mu"]
    tail = (1.0 - prob) / 2.0
    rows = []
    for name, v in (
        ("repeats per 30 days, average customer", per30),
        ("repeats by the top 20% of customers", top),
        ("median days until dropping out unseen", life),
    ):
        lo, hi = np.quantile(v, [tail, 1.0 - tail])
        rows.append(
            {"quantity": name, "mean": float(v.mean()), "low": float(lo), "high": float(hi)}
        )
    return pd.DataFrame(rows)


def class_summary(model: RepeatModel, prob: float = 0.94) -> pd.DataFrame:
    """The personas of a classes model: per class (ordered by repeat rate) its share of
    customers, repeats per 30 days and mean days until dropping out unseen (means and
    equal-tailed ``prob`` intervals)."""
    p = model.params
    tail = (1.0 - prob) / 2.0
    rows = []
    for k in range(p["w"].shape[1]):
        row: dict[str, Any] = {"class": k + 1}
        for name, v in (
            ("share", p["w"][:, k]),
            ("repeats_per_30_days", 30.0 * p["lam"][:, k]),
            ("days_to_drop_out", 1.0 / p["mu"][:, k]),
        ):
            lo, hi = np.quantile(v, [tail, 1.0 - tail])
            row |= {name: float(v.mean()), f"{name}_low": float(lo), f"{name}_high": float(hi)}
        rows.append(row)
    return pd.DataFrame(rows)
