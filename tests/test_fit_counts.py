"""The count fitter's mean flows against the engines, its two implementations against
each other, and ``funnelsim fit --kind counts`` as a planner runs it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from funnelsim.campaigns import Campaign, geometric_adstock
from funnelsim.dynamics import compile_model
from funnelsim.engines.expected import ExpectedEngine
from funnelsim.funnel import Funnel
from funnelsim.inference.flows import (
    Grid,
    Params,
    adstock,
    mean_flows,
    period_maps,
    step_matrices,
)

STAGES = ["aw", "int", "des", "conv"]


def _funnel() -> Funnel:
    return Funnel.from_rates(
        {
            "aw": {"int": 0.03, "lost": 0.05},
            "int": {"des": 0.04, "aw": 0.01, "lost": 0.04},
            "des": {"conv": 0.05, "lost": 0.04},
            "conv": {"conv": 0.01, "lost": 0.01},  # repeat purchases count as entries
        },
        goal="conv",
    )


def _grid_and_params(funnel: Funnel, spend: np.ndarray, periods: int, carry: list[float]):
    names = STAGES + ["lost"]
    edges = [(i, j) for i, a in enumerate(STAGES) for j, b in enumerate(names) if funnel.rate(a, b)]
    rate = np.array([funnel.rate(names[i], names[j]) for i, j in edges])
    grid = Grid(
        stages=tuple(STAGES),
        entry=0,
        edges=tuple(edges),
        dates=pd.date_range("2024-01-01", periods=periods, freq="7D"),
        period_days=7,
        steps_per_day=1,
        campaigns=("tv", "social"),
        spend=spend,
        spend_offset=0,
        effect_campaign=np.array([0, 1]),
        effect_edge=np.array([-1, edges.index((0, 1))]),
        shape=np.array([1.0, 1.5]),
        yearly_terms=0,
        weekly_terms=0,
        trend_days=periods * 7.0,
    )
    params = Params(
        rate=rate[None, None],
        log_lift=np.log([[1.6, 1.8]]),
        carryover=np.array([carry]),
        half_saturation=np.array([[300.0, 200.0]]),
        level=np.array([[500.0]]),
        trend=np.zeros(1),
        yearly=np.zeros((1, 0)),
        weekly=np.zeros((1, 0)),
    )
    return grid, params, rate


def _model(funnel: Funnel, spend: np.ndarray, periods: int, carry: list[float], initial):  # type: ignore[no-untyped-def]
    """The engines' model of the test funnel with tv (arrivals) and social (an edge)."""
    n_days = periods * 7
    campaigns = [
        Campaign("tv", 0, n_days - 1, n_days, spend=spend[0], carryover=carry[0],
                 half_saturation=300.0, arrival_lifts={"*": 1.6}),
        Campaign("social", 0, n_days - 1, n_days, spend=spend[1], carryover=carry[1],
                 half_saturation=200.0, shape=1.5, edge_lifts={("aw", "int"): 1.8}),
    ]  # fmt: skip
    return compile_model(
        funnel, start="2024-01-01", periods=periods, step_days=7, arrivals_per_day=500.0,
        initial=dict(zip(STAGES, initial)), campaigns=campaigns, dt=1.0,
    )  # fmt: skip


def _engine(funnel: Funnel, spend: np.ndarray, periods: int, carry: list[float], initial):
    raw = ExpectedEngine().run(_model(funnel, spend, periods, carry, initial))
    return raw.entries[0].sum(axis=-1)[:, :4], raw.occupancy[0][:, :4]


def _weekly_spend(rng: np.random.Generator, periods: int) -> np.ndarray:
    on = rng.random((2, periods)) < 0.5
    return np.repeat(np.where(on, rng.gamma(2.0, 200.0, (2, periods)), 0.0), 7, axis=1)


def _assert_flows_equal_the_engine(spend: np.ndarray, carry: list[float]) -> None:
    """The fitter's mean flows from the engine's (rounded) start equal the expected
    engine's entries (repeats included) and occupancy, number for number."""
    funnel, periods = _funnel(), spend.shape[1] // 7
    grid, params, rate = _grid_and_params(funnel, spend, periods, carry)
    _, p0 = step_matrices(grid, rate[None])
    start = np.round(np.linalg.solve((np.eye(4) - p0[0]).T, np.eye(4)[0] * 500.0))
    entries, occupancy = mean_flows(grid, params, initial=start[None, None])
    want_e, want_o = _engine(funnel, spend, periods, carry, start)
    np.testing.assert_allclose(entries[0, 0], want_e, rtol=1e-12)
    np.testing.assert_allclose(occupancy[0, 0], want_o, rtol=1e-12)


def test_flows_equal_the_expected_engine_when_pressure_is_constant_within_periods() -> None:
    """No carryover and spend constant within each week."""
    _assert_flows_equal_the_engine(_weekly_spend(np.random.default_rng(1), 30), [0.0, 0.0])


def test_flows_equal_the_expected_engine_with_carryover_and_daily_spend() -> None:
    """Pressure that changes every day (carryover 0.7 and 0.3, spend drawn per day):
    each day has its own rates in the fitter too, so it still matches the engine."""
    rng = np.random.default_rng(2)
    spend = np.where(rng.random((2, 210)) < 0.4, rng.gamma(2.0, 200.0, (2, 210)), 0.0)
    _assert_flows_equal_the_engine(spend, [0.7, 0.3])


def test_steady_state_is_where_the_funnel_stays_without_campaigns() -> None:
    funnel, periods = _funnel(), 12
    spend = np.zeros((2, periods * 7))
    grid, params, _ = _grid_and_params(funnel, spend, periods, [0.5, 0.5])
    entries, occupancy = mean_flows(grid, params)
    np.testing.assert_allclose(occupancy[0, 0], occupancy[0, 0, :1].repeat(periods, 0), rtol=1e-10)
    np.testing.assert_allclose(entries[0, 0, :, 0], 500.0 * 7 + entries[0, 0, 0, 0] - 3500.0)


def test_adstock_is_the_campaign_kernel() -> None:
    rng = np.random.default_rng(3)
    spend = rng.gamma(1.0, 100.0, (2, 45)) * (rng.random((2, 45)) < 0.4)
    got = adstock(spend, np.array([0.9, 0.2]))
    for c, carry in enumerate([0.9, 0.2]):
        np.testing.assert_allclose(got[c], geometric_adstock(spend[c], carry), rtol=1e-12)


@pytest.mark.parametrize("n", [1, 2, 5, 7, 14])
def test_period_maps_compose_steps(n: int) -> None:
    rng = np.random.default_rng(n)
    p = rng.dirichlet(np.ones(4), size=3)[:, :3] * 0.9
    e = p * (1 - np.eye(3))
    b = np.array([5.0, 0.0, 1.0])
    pi, beta, f_mat, f_vec = period_maps(p, e, b, n, np.eye(3))
    m0 = np.array([3.0, 2.0, 1.0])
    m, ent = m0.copy(), np.zeros(3)
    for _ in range(n):
        ent += m @ e
        m = m @ p + b
    np.testing.assert_allclose(m0 @ pi + beta, m, rtol=1e-12)
    np.testing.assert_allclose(m0 @ f_mat + f_vec, ent, rtol=1e-12)


def test_identifiability_reads_prior_contraction_and_tradeoffs() -> None:
    """Contraction is 1 − var(z | data) for every non-centred prior: a z with posterior sd
    0.1 is pinned, one with sd 0.9 is weak (with a hint naming the data that would help),
    and two z's that move together are reported as a pair."""
    import json

    import arviz as az

    from funnelsim.inference.count_fit import identifiability, identifiability_notes
    from funnelsim.inference.fitted import FittedFunnel

    rng = np.random.default_rng(0)
    n = 4000
    shared = rng.normal(size=n)
    z_rate = np.stack([0.1 * rng.normal(size=n), 0.9 * rng.normal(size=n)], axis=-1)
    z_lift = (0.3 * (0.95 * shared + np.sqrt(1 - 0.95**2) * rng.normal(size=n)))[:, None]
    z_hs = (0.3 * shared)[:, None]
    post = {
        "rate": np.full((1, n, 1, 2), 0.05),
        "z_rate": z_rate[None],
        "z_lift": z_lift[None],
        "z_half_life": 0.2 * rng.normal(size=(1, n, 1)),
        "z_half_saturation": z_hs[None],
        "z_level": 0.05 * rng.normal(size=(1, n, 1)),
        "trend": 0.5 * 0.2 * rng.normal(size=(1, n)),
    }
    idata = az.from_dict(
        posterior=post,
        dims={"rate": ["segment", "edge"]},
        coords={"segment": ["all"], "edge": ["a -> b", "a -> lost"]},
    )
    idata.attrs["funnelsim_counts"] = json.dumps(
        {
            "stages": ["a", "b"], "edges": [[0, 1], [0, 2]],
            "edge_names": ["a -> b", "a -> lost"], "effect_names": ["tv: a -> b"],
            "campaigns": ["tv"], "segments": ["all"], "trend_sd": 0.5, "seasonal_sd": 0.3,
        }
    )  # fmt: skip
    fit = FittedFunnel(idata, stages=("a", "b"), goal="b", kind="counts")
    table, pairs = identifiability(fit)
    verdict = dict(zip(table["parameter"], table["verdict"]))
    assert verdict["rate a -> b"] == "pinned"
    assert verdict["rate a -> lost"] == "weak"
    assert verdict["arrivals level"] == "pinned"
    hint = table.set_index("parameter").loc["rate a -> lost", "hint"]
    assert "occupancy counts of a" in hint and "journey" in hint
    assert abs(table.set_index("parameter").loc["rate a -> lost", "contraction"] - 0.19) < 0.05
    assert {(r.a, r.b) for r in pairs.itertuples()} == {("lift tv: a -> b", "half-saturation tv")}
    notes = identifiability_notes(fit)
    assert any("rate a -> lost" in note and "barely" in note for note in notes)
    assert any("trade off" in note for note in notes)


# ---------------------------------------------------------------------- random flows
def _engine_replicates(replicates: int) -> tuple[Grid, Params, np.ndarray, np.ndarray]:
    """The count engine run ``replicates`` times from a known start, with carryover,
    daily spend, an arrivals lift and an edge lift: ``[entries, occupancy]`` per period
    ``(R, T, 8)``."""
    from funnelsim.engines.counts import CountEngine

    rng = np.random.default_rng(2)
    periods, carry = 12, [0.7, 0.3]
    spend = np.where(rng.random((2, 84)) < 0.4, rng.gamma(2.0, 200.0, (2, 84)), 0.0)
    funnel = _funnel()
    grid, params, _ = _grid_and_params(funnel, spend, periods, carry)
    start = np.array([8000.0, 3000.0, 2000.0, 9000.0])
    raw = CountEngine().run(_model(funnel, spend, periods, carry, start), replicates, 7)
    counts = np.concatenate([raw.entries.sum(axis=-1)[..., :4], raw.occupancy[..., :4]], axis=-1)
    return grid, params, start, counts.astype(float)


def test_random_flows_have_the_count_engines_variance_and_the_filter_is_calibrated() -> None:
    """The covariance recursion is exact for independent movers with Poisson arrivals:
    over 3,000 count-engine runs, the variance of every count (4 stages × entries and
    occupancy × 12 weeks) matches, and the Kalman filter's standardised one-step-ahead
    errors have mean square 1 (which needs the covariances across weeks right too)."""
    from funnelsim.inference.kalman import kalman, moments

    reps = 3000
    grid, params, start, counts = _engine_replicates(reps)
    known = (start[None, None], np.zeros((1, 1, 4, 4)))
    mean, var = moments(grid, params, start=known)
    z_mean = (counts.mean(axis=0) - mean[0, 0]) / np.sqrt(var[0, 0] / reps)
    assert np.abs(z_mean).max() < 4.5
    ratio = counts.var(axis=0, ddof=1) / var[0, 0]  # each with sd about sqrt(2/R) = 2.6%
    assert np.abs(ratio - 1.0).max() < 4.5 * np.sqrt(2.0 / reps)
    assert abs(ratio.mean() - 1.0) < 3.0 * np.sqrt(2.0 / reps)  # sd of the pooled ratio is smaller
    # the filter over each run from the same start (no measurement noise)
    same = params.take(np.zeros(reps, dtype=int))
    out = kalman(
        grid, same, counts[:, None], np.arange(8), np.zeros((reps, 8)), 0.0,
        start=(np.repeat(known[0], reps, 0), np.repeat(known[1], reps, 0)),
    )  # fmt: skip
    n = 12 * 8  # chi2 of n standardised errors: mean n, sd sqrt(2n)
    assert abs(out["chi2"].mean() / n - 1.0) < 4.0 * np.sqrt(2.0 * n / reps) / n


def test_the_noise_model_whitens_the_counts_and_finds_their_extra_noise() -> None:
    """``noise_model``'s W whitens the covariance of random flows plus measurement noise
    (W Σ Wᵀ = I), and on counts drawn with 3% extra noise it finds about 3%; on counts
    with none, it finds (nearly) none."""
    from funnelsim.inference.kalman import measurement_variance, noise_model, series_covariance

    rng = np.random.default_rng(11)
    spend = _weekly_spend(rng, 40)
    grid, params, _ = _grid_and_params(_funnel(), spend, 40, [0.5, 0.2])
    index = np.arange(8)
    mean, cov = series_covariance(grid, params, index)
    found = {}
    for noise in (0.0, 0.03):
        sigma = cov[0] + np.diag(measurement_variance(mean[0], noise, 1e-3))
        root = np.linalg.cholesky(sigma)
        estimates = []
        for _ in range(20):
            y = mean[0] + root @ rng.standard_normal(len(mean[0]))
            w, level = noise_model(grid, params, index, y.reshape(1, 40, 8), 1e-3)
            estimates.append(level)
        found[noise] = np.mean(estimates)
        w, _ = noise_model(grid, params, index, y.reshape(1, 40, 8), 1e-3, noise=noise)
        np.testing.assert_allclose(w[0] @ sigma @ w[0].T, np.eye(320), atol=1e-8)
    assert found[0.0] < 0.005
    assert abs(found[0.03] - 0.03) < 0.006


def test_random_flows_are_modelled_unless_the_counts_are_small() -> None:
    """Counts of hundreds get the random-flow likelihood; counts of a few per period
    (where a Gaussian is poor) the NegativeBinomial one, unless the priors say."""
    from funnelsim.data.counts import CountData
    from funnelsim.inference.aggregate import design_for
    from funnelsim.inference.count_priors import CountPriors

    funnel = Funnel.from_rates({"visit": {"buy": 0.2, "lost": 0.3}, "buy": {}}, goal="buy")
    rng = np.random.default_rng(3)

    def data(mean: float) -> CountData:
        return CountData(
            dates=pd.date_range("2025-03-03", periods=30, freq="7D"),
            period_days=7,
            stages=("visit", "buy"),
            segments=("all",),
            series=(("visit", "entries"), ("buy", "entries")),
            counts=rng.poisson(mean, (1, 30, 2)).astype(float),
            campaigns=("search",),
            spend=rng.gamma(2.0, 50.0, (1, 210)),
            spend_start=pd.Timestamp("2025-03-03"),
            file="weekly.csv",
        )

    assert design_for(data(300.0), funnel).process_noise
    assert not design_for(data(6.0), funnel).process_noise
    asked = CountPriors.model_validate({"noise": {"process": True}})
    assert design_for(data(6.0), funnel, asked).process_noise
