"""Bayesian fits of a continuous-time Markov funnel from CRM snapshots (panel data).

A snapshot export gives the stage of each customer at irregular dates. Between two
snapshots a customer may have moved several times (or moved and come back), so only the
pair (stage then, stage now, time between) is seen. As in R's ``msm``, each consecutive
pair contributes ``P(t)[from, to]`` with ``P(t) = exp(Q t)`` for the generator ``Q`` of
hazard rates per day; ``lost`` is absorbing (it may be observed, e.g. a "closed" status).

Sufficient statistics: pairs grouped by (segment, from, to, gap) with counts, the gap
rounded to :data:`GAP_RESOLUTION_DAYS` (one hour; date-only exports give whole days
exactly), so the cost grows with distinct gaps, not with customers.

Transition probabilities by **uniformisation**: with ``q̄ = max_i λ_i`` (the largest
total exit rate) and ``R = I + Q / q̄``, ``P(t) = Σ_k Pois(k; q̄ t) R^k``. The powers of
``R`` are computed once per gradient (by doubling: log2 K batched products), ``P(t)`` for
every distinct gap with one product, and only the entries of observed pairs are gathered.
The truncation ``K`` is chosen from a generous bound on ``q̄ · max gap`` and checked on
the posterior draws afterwards. (One ``expm`` per interval is far too slow, and
PyTensor's ``expm`` gradient is wrong when ``Q`` has repeated eigenvalues.)

Priors: each rate ~ Gamma(α=1, β=α/centre) (exponential with mean ``centre``): the centre
of edge i → j is a crude exit rate of stage i (``-log(share still in i) / mean gap``) split
equally over i's edges, or ``prior_rates[edge]``. Repeat events (``a -> a``) are not
identifiable from snapshots and are left out.

>>> frame = pd.DataFrame({
...     "customer_id": [1, 1, 1, 2, 2],
...     "date": pd.to_datetime(["2026-01-01", "2026-01-11", "2026-01-15",
...                             "2026-01-01", "2026-01-11"]),
...     "stage": ["awareness", "interest", "lost", "awareness", "interest"],
... })
>>> s = snapshot_stats(frame, ("awareness", "interest"))
>>> s.table().to_dict("records")[0]
{'segment': 'all', 'from': 'awareness', 'to': 'interest', 'gap_days': 10.0, 'count': 2}
>>> s.n_customers, s.n_rows, s.first_stage.tolist()
(2, 5, [[2, 0, 0]])
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import gammaln

from funnelsim.errors import Problem, ScenarioError, did_you_mean
from funnelsim.funnel import LOST, Funnel

__all__ = [
    "GAP_RESOLUTION_DAYS",
    "SnapshotStats",
    "build_model",
    "fit_snapshots",
    "model_inputs",
    "simulate_snapshots",
    "snapshot_stats",
    "transition_matrix",
]

#: gaps between snapshots are rounded to this many days (1 hour) before grouping
GAP_RESOLUTION_DAYS = 1.0 / 24.0
_DAY = pd.Timedelta(days=1)


@dataclass(frozen=True, eq=False)
class SnapshotStats:
    """Consecutive snapshot pairs grouped by (segment, from, to, gap) with counts."""

    stages: tuple[str, ...]  # journey order, ``lost`` last
    segments: tuple[str, ...]  # ("all",) without a segment column
    pair_segment: np.ndarray  # (n,) int
    pair_from: np.ndarray  # (n,) int stage index (never lost)
    pair_to: np.ndarray  # (n,) int stage index
    pair_gap: np.ndarray  # (n,) float days, rounded to GAP_RESOLUTION_DAYS
    pair_count: np.ndarray  # (n,) int
    first_stage: np.ndarray  # (G, S) int: where customers are first observed
    n_customers: int
    n_rows: int

    def table(self) -> pd.DataFrame:
        """The grouped pairs as a DataFrame (``segment, from, to, gap_days, count``)."""
        st, sg = np.array(self.stages), np.array(self.segments)
        return pd.DataFrame(
            {
                "segment": sg[self.pair_segment],
                "from": st[self.pair_from],
                "to": st[self.pair_to],
                "gap_days": self.pair_gap,
                "count": self.pair_count,
            }
        )

    def pair_counts(self) -> np.ndarray:
        """Counts ``(G, S, S)`` of pairs by (segment, from, to), summed over gaps."""
        g, s = len(self.segments), len(self.stages)
        out = np.zeros((g, s, s), dtype=np.int64)
        np.add.at(out, (self.pair_segment, self.pair_from, self.pair_to), self.pair_count)
        return out


def snapshot_stats(
    frame: pd.DataFrame,
    stages: Sequence[str],
    *,
    segments: Sequence[str] | None = None,
    source: str | None = None,
) -> SnapshotStats:
    """Reduce a snapshot frame (``customer_id, date, stage[, segment]``) to pairs.

    Rows are ordered by customer and date here (stable). A customer's first row decides
    their segment. Pairs out of ``lost`` are dropped when they stay in ``lost``; a customer
    seen again in another stage after ``lost``, or in two stages at the same time, is an
    input error (:class:`~funnelsim.errors.ScenarioError`).
    """
    order = [s for s in stages if s != LOST] + [LOST]
    s_n = len(order)
    code = _codes(frame["stage"].astype(str).to_numpy(), order)
    problems = [
        Problem(("stage",), f"unknown stage {name!r}", did_you_mean(name, order), file=source)
        for name in sorted(set(frame["stage"].astype(str)[code < 0]))
    ]
    if problems:
        raise ScenarioError(problems, source=source)
    cust = pd.factorize(frame["customer_id"])[0]
    t = ((pd.to_datetime(frame["date"]) - pd.Timestamp("1970-01-01")) / _DAY).to_numpy(float)
    sort = np.lexsort((t, cust))
    cust, t, code = cust[sort], t[sort], code[sort]
    if "segment" in frame:
        values = frame["segment"].astype(str).to_numpy()[sort]
        seg_names = tuple(segments) if segments is not None else tuple(sorted(set(values)))
        seg_row = _codes(values, seg_names)
        if (seg_row < 0).any():
            raise ScenarioError(
                [
                    Problem(
                        ("segment",),
                        f"unknown segment {v!r}",
                        did_you_mean(v, seg_names),
                        file=source,
                    )
                    for v in sorted(set(values[seg_row < 0]))
                ],
                source=source,
            )
    else:
        seg_names, seg_row = ("all",), np.zeros(len(cust), dtype=np.int64)
    first = np.r_[True, cust[1:] != cust[:-1]]
    seg = seg_row[first][np.cumsum(first) - 1]

    here = np.flatnonzero(~np.r_[cust[1:] != cust[:-1], True])
    src, dst, g = code[here], code[here + 1], seg[here]
    gap = np.round((t[here + 1] - t[here]) / GAP_RESOLUTION_DAYS) * GAP_RESOLUTION_DAYS
    ids = frame["customer_id"].to_numpy()[sort][here]
    bad_lost = (src == s_n - 1) & (dst != s_n - 1)
    bad_same = (gap <= 0) & (src != dst)
    for mask, text, hint in (
        (bad_lost, "is seen in {to!r} after 'lost'", "lost is absorbing: map re-opened leads"),
        (bad_same, "is in {frm!r} and {to!r} at the same time", "keep one row per date"),
    ):
        for k in np.flatnonzero(mask)[:5]:
            msg = f"customer {ids[k]!r} " + text.format(frm=order[src[k]], to=order[dst[k]])
            problems.append(Problem(("stage",), msg, hint, file=source))
    if problems:
        raise ScenarioError(problems, source=source)
    keep = (src != s_n - 1) & (gap > 0)
    grouped = (
        pd.DataFrame({"g": g[keep], "f": src[keep], "t": dst[keep], "gap": gap[keep]})
        .value_counts(sort=False)
        .reset_index()
        .sort_values(["g", "f", "t", "gap"])
    )
    first_stage = np.zeros((len(seg_names), s_n), dtype=np.int64)
    np.add.at(first_stage, (seg[first], code[first]), 1)
    return SnapshotStats(
        stages=tuple(order),
        segments=seg_names,
        pair_segment=grouped["g"].to_numpy(np.int64),
        pair_from=grouped["f"].to_numpy(np.int64),
        pair_to=grouped["t"].to_numpy(np.int64),
        pair_gap=grouped["gap"].to_numpy(float),
        pair_count=grouped["count"].to_numpy(np.int64),
        first_stage=first_stage,
        n_customers=int(first.sum()),
        n_rows=len(frame),
    )


def _codes(values: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """Index of each value in ``names`` (-1 when absent)."""
    lookup = {n: i for i, n in enumerate(names)}
    return np.array([lookup.get(v, -1) for v in values], dtype=np.int64)


# --------------------------------------------------------------------- numpy kernels
def transition_matrix(q: np.ndarray, t: float | np.ndarray, *, tol: float = 1e-12) -> np.ndarray:
    """``exp(Q t)`` by uniformisation for a generator ``q`` (rows sum to 0).

    ``t`` may be an array: the result then has shape ``t.shape + q.shape``.

    >>> q = np.array([[-1.0, 1.0], [0.0, 0.0]])
    >>> transition_matrix(q, 1.0).round(4).tolist()
    [[0.3679, 0.6321], [0.0, 1.0]]
    """
    t = np.asarray(t, dtype=float)
    qbar = max(float(np.max(-np.diag(q))), 1e-300)
    k = _truncation(qbar * float(np.max(t, initial=0.0)), tol)
    powers = _powers(np.eye(len(q)) + q / qbar, k)
    return np.tensordot(_poisson_weights(qbar * t, k), powers, axes=1)


def _truncation(m: float, tol: float = 1e-12) -> int:
    """A K with Pois(> K; m) below ``tol`` (normal tail bound, generous)."""
    z = np.sqrt(-2.0 * np.log(tol))
    return int(np.ceil(m + z * np.sqrt(m) + 2.0 * z + 5.0))


def _powers(r: np.ndarray, k: int) -> np.ndarray:
    """``R^0 … R^k`` stacked on a new leading axis (``r`` may carry batch axes in front)."""
    out = np.empty((k + 1,) + r.shape)
    out[0] = np.broadcast_to(np.eye(r.shape[-1]), r.shape)
    for i in range(1, k + 1):
        out[i] = out[i - 1] @ r
    return out


def _poisson_weights(m: np.ndarray, k: int) -> np.ndarray:
    ks = np.arange(k + 1)
    m = np.asarray(m, dtype=float)[..., None]
    with np.errstate(divide="ignore", invalid="ignore"):
        logw = ks * np.log(m) - m - gammaln(ks + 1)
    logw = np.where(m > 0, logw, np.where(ks == 0, 0.0, -np.inf))
    return np.exp(logw)


# --------------------------------------------------------------------- edges and priors
def _edge_list(
    stats: SnapshotStats, edges: Funnel | Iterable[str | tuple[str, str]] | None
) -> tuple[list[tuple[int, int]], list[str]]:
    """Edges as (source, target) index pairs in row-major stage order, and notes."""
    st = stats.stages
    idx = {s: i for i, s in enumerate(st)}
    notes = ["Repeat events (a -> a) cannot be seen in snapshots: they are not fitted."]
    if edges is None:
        obs = stats.pair_counts().sum(axis=0)
        pairs = {(i, j) for i, j in zip(*np.nonzero(obs), strict=True) if i != j}
        notes.append(
            "Edges were taken from the pairs observed between snapshots; a pair may hide "
            "several moves, so a skip (e.g. a -> c) may really be a -> b -> c."
        )
    elif isinstance(edges, Funnel):
        rates = edges.rates
        pos = {s: idx.get(s) for s in edges.stages}
        pairs = set()
        for i, j in zip(*np.nonzero(rates), strict=True):
            pa, pb = pos[edges.stages[i]], pos[edges.stages[j]]
            if pa is None or pb is None:
                raise ScenarioError([Problem(("funnel",), "funnel stages differ from the data")])
            pairs.add((pa, pb))
    else:
        pairs = set()
        problems = []
        for e in edges:
            ends = [x.strip() for x in e.split("->")] if isinstance(e, str) else list(e)
            for name in ends:
                if name not in idx:
                    problems.append(
                        Problem(("edges",), f"unknown stage {name!r}", did_you_mean(name, st))
                    )
            if len(ends) == 2 and all(name in idx for name in ends):
                pairs.add((idx[ends[0]], idx[ends[1]]))
        if problems:
            raise ScenarioError(problems)
    pairs = {(i, j) for i, j in pairs if i != j and st[i] != LOST}
    return sorted(pairs), notes


def _check_reachable(stats: SnapshotStats, edges: list[tuple[int, int]]) -> None:
    s_n = len(stats.stages)
    reach = np.eye(s_n, dtype=bool)
    for i, j in edges:
        reach[i, j] = True
    for _ in range(s_n):
        reach = reach | ((reach.astype(int) @ reach.astype(int)) > 0)
    bad = ~reach[stats.pair_from, stats.pair_to]
    if bad.any():
        st = stats.stages
        names = sorted(
            {
                f"{st[a]} -> {st[b]}"
                for a, b in zip(stats.pair_from[bad], stats.pair_to[bad], strict=True)
            }
        )
        raise ScenarioError(
            [
                Problem(
                    ("edges",),
                    f"observed move {n!r} cannot happen with these edges",
                    "add an edge (or a path) that allows it",
                )
                for n in names
            ]
        )


def _prior_centres(
    stats: SnapshotStats, edges: list[tuple[int, int]], prior_rates: Mapping[str, float] | None
) -> np.ndarray:
    """Prior mean (per day) of each edge's rate (see the module docstring)."""
    st = stats.stages
    s_n = len(st)
    n_from = np.bincount(stats.pair_from, weights=stats.pair_count, minlength=s_n)
    n_stay = np.bincount(
        stats.pair_from,
        weights=stats.pair_count * (stats.pair_from == stats.pair_to),
        minlength=s_n,
    )
    time_from = np.bincount(
        stats.pair_from, weights=stats.pair_count * stats.pair_gap, minlength=s_n
    )
    all_time = max(float((stats.pair_count * stats.pair_gap).sum()), 1e-9)
    default = max(float(stats.pair_count.sum()), 1.0) / all_time  # ~ one move per gap
    out_deg = np.bincount([i for i, _ in edges], minlength=s_n)
    centres = np.empty(len(edges))
    for k, (i, j) in enumerate(edges):
        if n_from[i] > 0:
            stay = min(max(n_stay[i], 0.5) / n_from[i], 1.0 - 0.5 / n_from[i])
            total = -np.log(stay) / (time_from[i] / n_from[i])
        else:
            total = default
        centres[k] = max(total / max(out_deg[i], 1), 1e-4)
        name = f"{st[i]} -> {st[j]}"
        if prior_rates and name in prior_rates:
            centres[k] = float(prior_rates[name])
    if prior_rates:
        known = {f"{st[i]} -> {st[j]}" for i, j in edges}
        extra = [k for k in prior_rates if k not in known]
        if extra:
            raise ScenarioError(
                [
                    Problem(("prior_rates", k), "not a fitted edge", did_you_mean(k, known))
                    for k in extra
                ]
            )
    return centres


def _design(stats: SnapshotStats, centres: np.ndarray, edges: list[tuple[int, int]]) -> dict:
    """Index arrays and the truncation of the uniformisation series for the model."""
    s_n = len(stats.stages)
    exit_centre = np.zeros(s_n)
    for c, (i, _) in zip(centres, edges, strict=True):
        exit_centre[i] += c
    # the exponential priors put < 0.1% mass above 7x their centre: allow q̄ up to that
    qbar_cap = 7.0 * float(exit_centre.max(initial=1e-4))
    t_max = float(stats.pair_gap.max(initial=1.0))
    gaps, gap_idx = np.unique(stats.pair_gap, return_inverse=True)
    return {
        "k": _truncation(qbar_cap * t_max, 1e-10),
        "qbar_cap": qbar_cap,
        "gaps": gaps,
        "gap_idx": gap_idx.astype(np.int64),
        "flat": (
            (stats.pair_segment * len(gaps) + gap_idx) * s_n * s_n
            + stats.pair_from * s_n
            + stats.pair_to
        ),
        "count": stats.pair_count.astype(float),
    }


# --------------------------------------------------------------------- the model
def model_inputs(
    stats: SnapshotStats,
    *,
    edges: Funnel | Iterable[str | tuple[str, str]] | None = None,
    prior_rates: Mapping[str, float] | None = None,
) -> tuple[list[tuple[int, int]], list[str], np.ndarray, dict]:
    """Edges, notes, prior centres and design (``k``, ``data``) of a data set."""
    edge_idx, notes = _edge_list(stats, edges)
    if not edge_idx:
        raise ScenarioError([Problem(("edges",), "no edge to fit", "the data show no move")])
    _check_reachable(stats, edge_idx)
    centres = _prior_centres(stats, edge_idx, prior_rates)
    d = _design(stats, centres, edge_idx)
    g_n = len(stats.segments)
    d["data"] = {
        "gaps": d["gaps"],
        "flat": d["flat"],
        "count": d["count"],
        "prior_beta": np.tile(1.0 / centres, (g_n, 1)),
    }
    return edge_idx, notes, centres, d


def build_model(
    stats: SnapshotStats,
    *,
    edges: Funnel | Iterable[str | tuple[str, str]] | None = None,
    prior_rates: Mapping[str, float] | None = None,
    k: int | None = None,
) -> tuple[Any, list[tuple[int, int]], list[str], dict]:
    """The PyMC model (free variable ``rate``, dims ``segment, edge``), its edges,
    notes and design (truncation ``k``, and ``data``: the values of its ``pm.Data``).

    The pairs, gaps and prior rates are ``pm.Data``: a compiled model can be refitted to
    another data set of the same structure (``nutpie``'s ``with_data(**design["data"])``)
    when that set's ``k`` is not larger (pass ``k`` to fix it).
    """
    import pymc as pm
    import pytensor.tensor as pt

    edge_idx, notes, _, d = model_inputs(stats, edges=edges, prior_rates=prior_rates)
    if k is not None:
        d["k"] = k
    st = stats.stages
    s_n, g_n = len(st), len(stats.segments)
    src = np.array([i for i, _ in edge_idx])
    flat_edge = np.array([i * s_n + j for i, j in edge_idx])
    coords = {"segment": list(stats.segments), "edge": [f"{st[i]} -> {st[j]}" for i, j in edge_idx]}
    k = d["k"]
    with pm.Model(coords=coords) as model:
        data = {name: pm.Data(name, value) for name, value in d["data"].items()}
        rate = pm.Gamma("rate", alpha=1.0, beta=data["prior_beta"], dims=("segment", "edge"))
        off = pt.zeros((g_n, s_n * s_n))[:, flat_edge].set(rate).reshape((g_n, s_n, s_n))
        exits = pt.zeros((g_n, s_n))[:, src].inc(rate)  # (G, S) total exit rate
        qbar = pt.max(exits, axis=1) + 1e-12  # (G,)
        r = (
            off / qbar[:, None, None]
            + pt.eye(s_n)[None]
            - (exits / qbar[:, None])[:, :, None] * pt.eye(s_n)[None]
        )
        # R^0 … R^K by doubling: [R^0..R^(m-1)] @ R^m gives the next m powers, so the
        # graph has log2(K) batched products (a K-step scan costs ~20x more per gradient)
        powers = pt.broadcast_to(pt.eye(s_n), (g_n, 1, s_n, s_n))
        r_m, have = r, 1
        while have < k + 1:
            powers = pt.concatenate([powers, _bmm(powers, r_m[:, None])], axis=1)
            r_m, have = _bmm(r_m, r_m), 2 * have
        powers = powers[:, : k + 1].reshape((g_n, k + 1, s_n * s_n))
        # P(t) of every distinct gap at once: Poisson weights (G, gaps, K+1) @ powers
        ks = np.arange(k + 1, dtype=float)
        m = qbar[:, None] * data["gaps"][None, :]  # (G, gaps)
        logw = ks * pt.log(m)[..., None] - m[..., None] - gammaln(ks + 1)
        p_all = pt.stack([pt.dot(pt.exp(logw[g]), powers[g]) for g in range(g_n)])
        prob = p_all.ravel()[data["flat"]]  # only the entries of observed pairs
        pm.Potential("pairs_loglik", pt.sum(data["count"] * pt.log(prob)))
    return model, edge_idx, notes, d


def _bmm(a: Any, b: Any) -> Any:
    """Batched product of small matrices as a broadcast multiply-and-sum (PyTensor's
    batched ``matmul`` loops over the batch in Python: ~10x slower here)."""
    return (a[..., :, :, None] * b[..., None, :, :]).sum(axis=-2)


def _sample(
    model: Any, sampler: str, draws: int, tune: int, chains: int, seed: int, progress: bool
) -> tuple[Any, str, list[str]]:
    """NUTS draws, the sampler that ran and its notes, from the shared
    :func:`funnelsim.inference.sampling.sample` (a nutpie failure is retried with PyMC)."""
    from funnelsim.inference.sampling import sample

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "invalid value encountered", RuntimeWarning)
        idata = sample(
            model,
            sampler=sampler,
            draws=draws,
            tune=tune,
            chains=chains,
            seed=seed,
            progress=progress,
        )
    return (
        idata,
        str(idata.attrs.get("sampler", sampler)),
        json.loads(idata.attrs.get("notes", "[]")),
    )


def fit_snapshots(
    stats: SnapshotStats,
    *,
    edges: Funnel | Iterable[str | tuple[str, str]] | None = None,
    prior_rates: Mapping[str, float] | None = None,
    sampler: str = "nutpie",
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    seed: int | None = None,
    progress: bool = False,
) -> Any:
    """Posterior of the hazard rates (per day) of a CTMC funnel from snapshot pairs.

    Returns an ``arviz.InferenceData`` following the fit contract: ``posterior.rate``
    ``(chain, draw, segment, edge)`` (every fitted edge, ``lost`` included; no repeat
    edges), ``observed_data.pairs`` and ``posterior_predictive.pairs`` over
    ``(segment, pair)`` where pair ``"a -> b"`` means "in a at one snapshot, in b at the
    next" (``"a -> a"``: still in a), replicated with the same gaps; ``attrs`` hold method,
    sampler, draws, chains, tune, seed, compile/sampling seconds and JSON ``notes``.

    ``edges``: a :class:`~funnelsim.funnel.Funnel` (its non-zero rates), ``"a -> b"``
    strings or ``(a, b)`` tuples; default: the pairs seen in the data.
    ``prior_rates``: prior mean rate of chosen edges (``{"a -> b": per_day}``).

    >>> idata = fit_snapshots(snapshot_stats(frame, stages), seed=1)  # doctest: +SKIP
    >>> idata.posterior["rate"].mean(("chain", "draw")).sel(segment="all")  # doctest: +SKIP
    """
    if sampler not in ("nutpie", "pymc"):
        raise ValueError(f"sampler must be 'nutpie' or 'pymc', not {sampler!r}")
    if seed is None:
        seed = int(np.random.SeedSequence().generate_state(1)[0] % (2**31 - 1))
    model, edge_idx, notes, design = build_model(stats, edges=edges, prior_rates=prior_rates)
    t0 = time.perf_counter()
    idata, used, sampler_notes = _sample(model, sampler, draws, tune, chains, seed, progress)
    notes += sampler_notes
    seconds = time.perf_counter() - t0
    idata = _finish(idata, stats, edge_idx, design, notes, seed)
    idata.attrs.update(
        method="nuts",
        sampler=used,
        draws=draws,
        chains=chains,
        tune=tune,
        seed=seed,
        seconds=round(seconds, 2),
        notes=json.dumps(notes),
    )
    return idata


# --------------------------------------------------------------------- after sampling
def _generators(rate: np.ndarray, edges: list[tuple[int, int]], s_n: int) -> np.ndarray:
    """Generators ``(..., S, S)`` from rates ``(..., E)``."""
    q = np.zeros(rate.shape[:-1] + (s_n, s_n))
    for e, (i, j) in enumerate(edges):
        q[..., i, j] = rate[..., e]
    idx = np.arange(s_n)
    q[..., idx, idx] = -q.sum(axis=-1)
    return q


def _finish(
    idata: Any,
    stats: SnapshotStats,
    edges: list[tuple[int, int]],
    design: dict,
    notes: list[str],
    seed: int,
) -> Any:
    import arviz as az
    import xarray as xr

    st = stats.stages
    s_n, g_n = len(st), len(stats.segments)
    post = idata.posterior
    rate = post["rate"].transpose("chain", "draw", "segment", "edge").to_numpy()
    c_n, d_n = rate.shape[:2]
    pair_names = [f"{a} -> {b}" for a in st[:-1] for b in st]
    obs = stats.pair_counts()[:, :-1, :].reshape(g_n, -1)

    # replicated pairs: each (segment, from, gap) group keeps its size, new destinations
    origin = pd.DataFrame(
        {
            "g": stats.pair_segment,
            "f": stats.pair_from,
            "gap": stats.pair_gap,
            "n": stats.pair_count,
        }
    )
    origin = origin.groupby(["g", "f", "gap"], as_index=False)["n"].sum()
    og, of, ot, on = (origin[c].to_numpy() for c in ("g", "f", "gap", "n"))
    flat_rate = rate.reshape(c_n * d_n, g_n, -1)
    q = _generators(flat_rate, edges, s_n)  # (N, G, S, S)
    exits = -np.diagonal(q, axis1=-2, axis2=-1)
    qbar = np.maximum(exits.max(axis=-1), 1e-300)  # (N, G)
    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(1)[0])
    rep = np.zeros((c_n * d_n, g_n, s_n - 1, s_n), dtype=np.int64)
    k_max = _truncation(float(qbar.max() * ot.max(initial=0.0)))
    chunk = max(1, 2_000_000 // max(1, (k_max + 1) * len(og) * s_n))
    for a in range(0, c_n * d_n, chunk):
        b = min(a + chunk, c_n * d_n)
        r = np.eye(s_n) + q[a:b] / qbar[a:b, :, None, None]
        pw = _powers(r, k_max)  # (K+1, n, G, S, S)
        w = _poisson_weights(qbar[a:b][:, og] * ot, k_max)  # (n, O, K+1)
        rows = pw[:, :, og, of, :]  # (K+1, n, O, S)
        p = np.einsum("nok,knos->nos", w, rows)
        p = np.clip(p, 0.0, None)
        p /= p.sum(axis=-1, keepdims=True)
        draw = rng.multinomial(on, p)  # (n, O, S)
        for o in range(len(og)):
            rep[a:b, og[o], of[o]] += draw[:, o]

    # truncation actually used in the model vs the posterior's q̄ · max gap
    model_qbar_t = float(qbar.max() * design["gaps"].max(initial=0.0))
    if _truncation(model_qbar_t, 1e-8) > design["k"]:
        notes.append(
            f"Posterior rates reach q̄·t = {model_qbar_t:.1f}, near the uniformisation "
            f"truncation K = {design['k']}: refit with larger prior_rates."
        )
    # identifiability per edge
    st_names = [f"{st[i]} -> {st[j]}" for i, j in edges]
    mean, sd = rate.mean(axis=(0, 1)), rate.std(axis=(0, 1))
    for gi, g in enumerate(stats.segments):
        for e, name in enumerate(st_names):
            ratio = sd[gi, e] / max(mean[gi, e], 1e-300)
            if ratio > 0.5:
                where = f" ({g})" if g_n > 1 else ""
                notes.append(
                    f"{name}{where} is weakly identified from snapshots "
                    f"(posterior sd {ratio:.1f}x its mean)."
                )

    coords = {"segment": list(stats.segments), "pair": pair_names}
    idata.add_groups(
        observed_data=xr.Dataset({"pairs": (("segment", "pair"), obs)}, coords=coords),
        posterior_predictive=xr.Dataset(
            {"pairs": (("chain", "draw", "segment", "pair"), rep.reshape(c_n, d_n, g_n, -1))},
            coords={**coords, "chain": post.chain.values, "draw": post.draw.values},
        ),
    )
    if "diverging" not in idata.sample_stats:
        idata.sample_stats["diverging"] = (("chain", "draw"), np.zeros((c_n, d_n), bool))
    assert isinstance(idata, az.InferenceData)
    return idata


# --------------------------------------------------------------------- simulation
def simulate_snapshots(
    rates: Mapping[str, Mapping[str, float]],
    stages: Sequence[str],
    *,
    n_customers: int,
    visits: int | tuple[int, int] = 5,
    gap_days: tuple[int, int] = (3, 40),
    start_stage: str | None = None,
    rng: int | np.random.Generator | None = None,
) -> pd.DataFrame:
    """Exact simulation of a CTMC funnel seen at irregular snapshot dates.

    Each customer starts in ``start_stage`` (default: the first stage) on 2026-01-01 and
    is observed ``visits`` times (a number, or a range ``(lo, hi)`` drawn uniformly),
    gaps drawn uniformly in whole days from ``gap_days``; moves between snapshots follow
    the exact jump chain (Gillespie), so one gap may hide several moves.

    >>> df = simulate_snapshots({"a": {"b": 0.1}}, ("a", "b"), n_customers=2, rng=1)
    >>> list(df.columns), len(df)
    (['customer_id', 'date', 'stage'], 10)
    """
    rng = np.random.default_rng(rng)
    order = [s for s in stages if s != LOST] + [LOST]
    s_n = len(order)
    idx = {s: i for i, s in enumerate(order)}
    q = np.zeros((s_n, s_n))
    for a, row in rates.items():
        for b, v in row.items():
            if a != b:
                q[idx[a], idx[b]] = v
    exit_rate = q.sum(axis=1)
    start = idx[start_stage or order[0]]
    day0 = pd.Timestamp("2026-01-01")
    cid, days, stage = [], [], []
    for c in range(n_customers):
        n_v = visits if isinstance(visits, int) else int(rng.integers(visits[0], visits[1] + 1))
        gaps = rng.integers(gap_days[0], gap_days[1] + 1, size=n_v - 1)
        times = np.concatenate([[0], np.cumsum(gaps)])
        state, now = start, 0.0
        for t_obs in times:
            while exit_rate[state] > 0:
                step = rng.exponential(1.0 / exit_rate[state])
                if now + step > t_obs:
                    break
                now += step
                state = int(rng.choice(s_n, p=q[state] / exit_rate[state]))
            now = max(now, float(t_obs))  # memoryless: restart the clock at the snapshot
            cid.append(c)
            days.append(int(t_obs))
            stage.append(order[state])
    return pd.DataFrame(
        {"customer_id": cid, "date": day0 + pd.to_timedelta(days, unit="D"), "stage": stage}
    )
