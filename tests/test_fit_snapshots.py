"""Snapshot (panel) fits: pair statistics, uniformisation, and recovery of a known CTMC.

The recovery story: 600 customers of a funnel with a back edge (interest → awareness)
are observed 4–6 times at irregular gaps (3–40 days); the Bayesian CTMC fit must put
every rate within 3.5 posterior sd of the truth.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.linalg as sl
import yaml

from funnelsim.errors import ScenarioError
from funnelsim.inference.snapshots import (
    build_model,
    fit_snapshots,
    model_inputs,
    simulate_snapshots,
    snapshot_stats,
    transition_matrix,
)

STAGES = ("awareness", "interest", "desire", "purchase")
TRUTH = {
    "awareness": {"interest": 0.08, "lost": 0.02},
    "interest": {"desire": 0.06, "awareness": 0.04, "lost": 0.02},
    "desire": {"purchase": 0.05, "lost": 0.03},
}
# row-major over the stage order (lost last), as in the fit's edge coords
EDGES = [
    "awareness -> interest",
    "awareness -> lost",
    "interest -> awareness",
    "interest -> desire",
    "interest -> lost",
    "desire -> purchase",
    "desire -> lost",
]


def write_crm_example(folder: Path) -> tuple[pd.DataFrame, Path, Path]:
    """400 simulated customers' snapshots as ``folder/crm.csv`` and the true funnel as
    ``folder/funnel.yaml``: ``(frame, data, funnel)``."""
    frame = simulate_snapshots(TRUTH, STAGES, n_customers=400, visits=(4, 6), rng=21)
    data = folder / "crm.csv"
    frame.assign(date=frame["date"].dt.strftime("%Y-%m-%d")).to_csv(data, index=False)
    funnel = folder / "funnel.yaml"
    rates = {a: {"rates": row} for a, row in TRUTH.items()} | {"purchase": {"rates": {}}}
    funnel.write_text(yaml.safe_dump({"goal": "purchase", "stages": rates}))
    return frame, data, funnel


def _expm_loglik(stats, q: np.ndarray) -> float:
    """Σ count · log exp(Q t)[from, to] with one scipy expm per pair group (reference)."""
    return float(
        sum(
            c * np.log(sl.expm(q * g)[a, b])
            for a, b, g, c in zip(
                stats.pair_from, stats.pair_to, stats.pair_gap, stats.pair_count, strict=True
            )
        )
    )


# ------------------------------------------------------------------ statistics
def test_docstring_examples():
    import doctest

    import funnelsim.inference.snapshots as module

    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 8 and result.failed == 0


def test_pairs_are_grouped_by_gap_with_counts_and_first_stages():
    frame = pd.DataFrame(
        {
            "customer_id": ["b", "a", "a", "b", "a", "c"],
            "date": pd.to_datetime(
                [
                    "2026-01-01",
                    "2026-01-05 10:20",
                    "2026-01-01",
                    "2026-01-05 10:00",
                    "2026-01-09",
                    "2026-01-01",
                ],
                format="ISO8601",
            ),
            "stage": ["interest", "interest", "awareness", "interest", "lost", "desire"],
        }
    )
    s = snapshot_stats(frame, STAGES)
    table = s.table()
    # a: awareness (Jan 1) → interest (Jan 5 10:20, rounded to 10:00) → lost; b: stays
    assert table[["from", "to", "count"]].values.tolist() == [
        ["awareness", "interest", 1],
        ["interest", "interest", 1],
        ["interest", "lost", 1],
    ]
    np.testing.assert_allclose(table["gap_days"], [4 + 10 / 24, 4 + 10 / 24, 3 + 14 / 24])
    assert (s.n_customers, s.n_rows) == (3, 6)
    assert s.first_stage.tolist() == [[1, 1, 1, 0, 0]]
    assert s.pair_counts()[0, 1].tolist() == [0, 1, 0, 0, 1]


def test_segments_come_from_the_first_row():
    frame = pd.DataFrame(
        {
            "customer_id": [1, 1, 2, 2],
            "date": pd.to_datetime(["2026-01-01", "2026-01-03"] * 2),
            "stage": ["awareness", "interest", "awareness", "awareness"],
            "segment": ["smb", "smb", "ent", "ent"],
        }
    )
    s = snapshot_stats(frame, STAGES)
    assert s.segments == ("ent", "smb")
    assert s.pair_counts()[:, 0, :2].tolist() == [[1, 0], [0, 1]]


@pytest.mark.parametrize(
    ("stages", "dates", "message"),
    [
        (["awareness", "intrest"], ["2026-01-01", "2026-01-02"], "did you mean 'interest'"),
        (["lost", "interest"], ["2026-01-01", "2026-01-02"], "after 'lost'"),
        (["awareness", "interest"], ["2026-01-01", "2026-01-01"], "at the same time"),
    ],
)
def test_bad_snapshots_are_reported(stages, dates, message):
    frame = pd.DataFrame({"customer_id": [7, 7], "date": pd.to_datetime(dates), "stage": stages})
    with pytest.raises(ScenarioError, match=message):
        snapshot_stats(frame, STAGES, source="crm.csv")


def test_unknown_edges_and_unreachable_pairs_are_reported():
    frame = simulate_snapshots(TRUTH, STAGES, n_customers=50, rng=3)
    s = snapshot_stats(frame, STAGES)
    with pytest.raises(ScenarioError, match="did you mean 'desire'"):
        build_model(s, edges=["awareness -> desier"])
    with pytest.raises(ScenarioError, match="cannot happen"):
        build_model(s, edges=["awareness -> interest"])


def test_default_edges_are_the_observed_moves_and_skips_are_noted():
    frame = simulate_snapshots(TRUTH, STAGES, n_customers=200, rng=4)
    s = snapshot_stats(frame, STAGES)
    edges, notes, centres, design = model_inputs(s)
    names = {f"{s.stages[i]} -> {s.stages[j]}" for i, j in edges}
    observed = s.pair_counts().sum(axis=0)
    assert names == {
        f"{s.stages[i]} -> {s.stages[j]}" for i, j in zip(*np.nonzero(observed)) if i != j
    }
    assert set(EDGES) <= names and "awareness -> desire" in names  # a two-move skip
    assert any("several moves" in n for n in notes)
    assert any("Repeat events" in n for n in notes)
    assert (centres > 0).all() and design["data"]["prior_beta"].shape == (1, len(edges))
    # the truncation covers the largest plausible q̄ · gap with room to spare
    assert design["k"] > design["qbar_cap"] * s.pair_gap.max()


# ------------------------------------------------------------------ uniformisation
@pytest.mark.parametrize("t", [0.0, 0.5, 7.0, 40.0])
def test_uniformisation_matches_expm_including_repeated_eigenvalues(t):
    rng = np.random.default_rng(0)
    general = rng.uniform(0, 0.3, (5, 5)) * (rng.random((5, 5)) < 0.6)
    general[-1] = 0.0
    chain = np.diag([0.2, 0.2, 0.2, 0.2], 1)  # equal rates: one eigenvalue, a Jordan block
    for rates in (general, chain):
        np.fill_diagonal(rates, 0.0)
        q = rates - np.diag(rates.sum(axis=1))
        np.testing.assert_allclose(transition_matrix(q, t), sl.expm(q * t), atol=1e-11)
    ts = np.array([1.0, 2.0])
    assert transition_matrix(q, ts).shape == (2, 5, 5)


@pytest.fixture(scope="module")
def stats():
    frame = simulate_snapshots(TRUTH, STAGES, n_customers=600, visits=(4, 6), rng=2026)
    return snapshot_stats(frame, STAGES)


@pytest.mark.filterwarnings("ignore:PyTensor could not link to a BLAS")
def test_model_loglik_and_gradient_match_expm(stats):
    """The PyTensor likelihood equals Σ log expm(Q t) and its gradient equals finite
    differences of it, also where Q has a repeated eigenvalue (equal exit rates)."""
    import pytensor

    model, edges, _, design = build_model(stats, edges=EDGES)
    (pot,) = model.potentials
    value = model.rvs_to_values[model["rate"]]  # log rates
    ll = model.replace_rvs_by_values([pot])[0]
    f = pytensor.function([value], [ll, pytensor.grad(ll, value)])
    s_n = len(stats.stages)

    def reference(log_rate: np.ndarray) -> float:
        q = np.zeros((s_n, s_n))
        for r, (i, j) in zip(np.exp(log_rate[0]), edges, strict=True):
            q[i, j] = r
        return _expm_loglik(stats, q - np.diag(q.sum(axis=1)))

    truth = np.log([[TRUTH[stats.stages[i]].get(stats.stages[j]) for i, j in edges]])
    equal = np.log(np.full_like(truth, 0.05))  # every exit rate 0.1 or 0.15: repeated
    for point in (truth, equal):
        value_, grad = f(point)
        assert value_ == pytest.approx(reference(point), rel=1e-9)
        h = 1e-5
        fd = [
            (reference(point + h * e) - reference(point - h * e)) / (2 * h)
            for e in np.eye(point.size).reshape(point.size, 1, -1)
        ]
        np.testing.assert_allclose(grad[0], fd, rtol=1e-5, atol=1e-4)
    assert design["k"] >= 40


# ------------------------------------------------------------------ recovery
@pytest.fixture(scope="module")
def idata(stats):
    return fit_snapshots(stats, edges=EDGES, sampler="pymc", draws=500, tune=500, chains=2, seed=11)


def test_rates_with_a_back_edge_are_recovered(idata):
    rate = idata.posterior["rate"].sel(segment="all")
    mean, sd = rate.mean(("chain", "draw")), rate.std(("chain", "draw"))
    for edge in EDGES:
        a, b = (x.strip() for x in edge.split("->"))
        z = (float(mean.sel(edge=edge)) - TRUTH[a][b]) / float(sd.sel(edge=edge))
        assert abs(z) < 3.5, (edge, z)
    assert int(idata.sample_stats["diverging"].sum()) == 0


def test_fit_follows_the_contract(idata, stats):
    assert idata.posterior["rate"].dims == ("chain", "draw", "segment", "edge")
    assert list(idata.posterior["edge"].values) == EDGES  # row-major stage order
    assert idata.attrs["method"] == "nuts" and idata.attrs["sampler"] == "pymc"
    assert (idata.attrs["draws"], idata.attrs["chains"], idata.attrs["seed"]) == (500, 2, 11)
    notes = json.loads(idata.attrs["notes"])
    assert any("Repeat events" in n for n in notes)
    obs = idata.observed_data["pairs"]
    assert int(obs.sum()) == int(stats.pair_count.sum())
    assert obs.sel(segment="all", pair="interest -> awareness") > 0
    rep = idata.posterior_predictive["pairs"]
    assert rep.dims == ("chain", "draw", "segment", "pair")
    # same exposure: every replicate has as many pairs out of each stage as the data
    assert (rep.sum("pair") == int(obs.sum())).all()
    # posterior predictive check: observed pair counts lie inside their 99.9% bands
    lo, hi = rep.quantile([0.0005, 0.9995], dim=("chain", "draw"))
    assert ((obs >= lo) & (obs <= hi)).all()


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:PyTensor could not link to a BLAS")
def test_segments_have_their_own_generators():
    """With two segments the likelihood is the sum of each segment's expm likelihood."""
    import pytensor

    frames = []
    for name, scale, seed in (("smb", 1.0, 5), ("ent", 0.5, 6)):
        rates = {a: {b: v * scale for b, v in row.items()} for a, row in TRUTH.items()}
        f = simulate_snapshots(rates, STAGES, n_customers=80, rng=seed)
        frames.append(f.assign(segment=name, customer_id=f["customer_id"].astype(str) + name))
    s = snapshot_stats(pd.concat(frames, ignore_index=True), STAGES)
    model, edges, _, _ = build_model(s, edges=EDGES)
    value = model.rvs_to_values[model["rate"]]
    f = pytensor.function([value], model.replace_rvs_by_values(model.potentials)[0])
    point = np.log(np.array([[0.05, 0.02, 0.03, 0.06, 0.01, 0.04, 0.02], [0.1] * 7]))
    s_n = len(s.stages)
    total = 0.0
    for g in range(2):
        q = np.zeros((s_n, s_n))
        for r, (i, j) in zip(np.exp(point[g]), edges, strict=True):
            q[i, j] = r
        q -= np.diag(q.sum(axis=1))
        keep = s.pair_segment == g
        total += sum(
            c * np.log(sl.expm(q * t)[a, b])
            for a, b, t, c in zip(
                s.pair_from[keep],
                s.pair_to[keep],
                s.pair_gap[keep],
                s.pair_count[keep],
                strict=True,
            )
        )
    assert f(point) == pytest.approx(total, rel=1e-9)
