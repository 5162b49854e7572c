"""Bayesian fits of journeys: exact posteriors, samplers that agree, recovery of known rates.

Logs come from the agent engine (the round trip the issue asks for) with known hazard
rates; tolerances are derived from posterior and Monte Carlo standard errors. PyMC
models are few and small (PyMC's own sampler: its compile is quick once cached).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import arviz as az
import numpy as np
import pandas as pd
import pytensor.tensor as pt
import pytest

from funnelsim.errors import ScenarioError
from funnelsim.inference.campaign_data import campaigns_for_stats, read_campaigns
from funnelsim.inference.journeys import fit_journeys, silent_probability
from funnelsim.inference.sampling import sample
from funnelsim.inference.stats import journey_stats
from funnelsim.scenario.loader import load_scenario
from funnelsim.scenario.runner import run

TRUTH = {
    "a -> b": 0.10,
    "a -> lost": 0.05,
    "b -> a": 0.02,
    "b -> c": 0.08,
    "b -> lost": 0.05,
    "c -> c": 0.03,
    "c -> lost": 0.02,
}
FUNNEL = """
funnel:
  goal: c
  stages:
    a: {rates: {b: 0.10, lost: 0.05}}
    b: {rates: {c: 0.08, a: 0.02, lost: 0.05}}
    c: {rates: {c: 0.03, lost: 0.02}}
engine: agents
replicates: 1
"""
START = pd.Timestamp("2026-01-01")


def simulate(tmp: Path, body: str, days: int, *, record_lost: bool = False, **stats_kw):
    """Journeys from the agent engine (staggered Poisson arrivals into ``a``) → stats."""
    path = tmp / "scenario.yaml"
    path.write_text(f"name: fit\nhorizon: {{start: 2026-01-01, periods: {days}}}\n{FUNNEL}{body}")
    result = run(load_scenario(path), record_journeys=True, record_lost=record_lost)
    log = next(iter(result.journeys.values()))
    return journey_stats(log, ("a", "b", "c"), end=START + pd.Timedelta(days=days), **stats_kw)


@pytest.fixture(scope="module")
def observed(tmp_path_factory):
    """Every exit recorded: 60 days, 15 arrivals a day."""
    tmp = tmp_path_factory.mktemp("observed")
    return simulate(tmp, "arrivals: {per_day: 15, stage: a}\nseed: 3\n", 60, record_lost=True)


@pytest.fixture(scope="module")
def silent(tmp_path_factory):
    """Silent drop-off: 120 days, 30 arrivals a day (about 3,500 customers)."""
    tmp = tmp_path_factory.mktemp("silent")
    return simulate(tmp, "arrivals: {per_day: 30, stage: a}\nseed: 7\n", 120)


@pytest.fixture(scope="module")
def gibbs_fit(silent):
    return fit_journeys(silent, draws=1000, tune=300, chains=4, seed=11)


@pytest.fixture(scope="module")
def nuts_silent(silent):
    return fit_journeys(silent, method="nuts", sampler="pymc", draws=1000, chains=2, seed=5)


def _moments(fit):
    rate = fit.posterior["rate"].isel(segment=0)
    ess = az.ess(rate.to_dataset(name="rate"))["rate"].values
    return rate.mean(("chain", "draw")).values, rate.std(("chain", "draw")).values, ess


def _assert_agree(fit_a, fit_b, n_se=4.0):
    """Means and sds of two posteriors agree within ``n_se`` Monte Carlo standard errors."""
    m_a, s_a, e_a = _moments(fit_a)
    m_b, s_b, e_b = _moments(fit_b)
    se_mean = np.sqrt(s_a**2 / e_a + s_b**2 / e_b)
    se_sd = np.sqrt(s_a**2 / (2 * e_a) + s_b**2 / (2 * e_b))
    np.testing.assert_array_less(np.abs(m_a - m_b), n_se * se_mean)
    np.testing.assert_array_less(np.abs(s_a - s_b), n_se * se_sd)


# --- exact posteriors ---------------------------------------------------------------


def test_conjugate_posterior_is_gamma_of_counts_and_exposure(observed):
    prior = {tuple(e.split(" -> ")): r for e, r in TRUTH.items()}
    fit = fit_journeys(observed, prior_rates=prior, draws=4000, chains=4, seed=1)
    assert fit.attrs["method"] == "conjugate" and fit.attrs["drop_off"] == "observed"
    stages = observed.stages
    exposure = (observed.exposure + observed.tail_exposure()).sum(axis=(0, 2))
    moves = observed.transitions.sum(axis=(0, 3))
    rate = fit.posterior["rate"].isel(segment=0)
    n_draws = rate.sizes["chain"] * rate.sizes["draw"]
    for edge in rate.coords["edge"].values:
        src, dst = edge.split(" -> ")
        i, j = stages.index(src), stages.index(dst)
        a, b = 1.0 + moves[i, j], 1.0 / TRUTH[edge] + exposure[i]
        draws = rate.sel(edge=edge).values.ravel()
        mean, sd = a / b, np.sqrt(a) / b
        assert abs(draws.mean() - mean) < 4 * sd / np.sqrt(n_draws)
        assert abs(draws.std() - sd) < 4 * sd / np.sqrt(2 * n_draws)


def test_nuts_agrees_with_the_conjugate_posterior(observed):
    exact = fit_journeys(observed, draws=2000, chains=4, seed=2)
    nuts = fit_journeys(observed, method="nuts", sampler="pymc", draws=1000, chains=2, seed=2)
    assert nuts.attrs["method"] == "nuts" and int(nuts.sample_stats["diverging"].sum()) == 0
    _assert_agree(exact, nuts)


# --- silent drop-off ----------------------------------------------------------------


def test_silence_term_matches_numerical_integration_with_rates_changing_by_period():
    d = np.array([1.0, 2.0, 1.0, 0.5])
    lam = np.array([[0.3, 0.6, 0.2, 0.4]])
    mu = np.array([[0.1, 0.4, 0.05, 0.3]])
    period, left = np.array([0, 1, 3]), np.array([0.75, 1.5, 0.25])
    got = silent_probability(
        pt.as_tensor(lam), pt.as_tensor(mu), d, (np.zeros(3, int), period, left)
    )
    bounds = np.concatenate([[0.0], np.cumsum(d)])
    for k, value in enumerate(got.eval()):
        s = bounds[period[k] + 1] - left[k]  # time of the last event
        u = np.linspace(s, bounds[-1], 200_001)
        p_of = np.clip(np.searchsorted(bounds, u, side="right") - 1, 0, 3)
        big = np.concatenate([[0.0], np.cumsum(lam[0, p_of][1:] * np.diff(u))])  # ∫λ
        integrand = mu[0, p_of] * np.exp(-big)
        lost = np.sum((integrand[1:] + integrand[:-1]) / 2 * np.diff(u))
        assert value == pytest.approx(np.exp(-big[-1]) + lost, rel=5e-5)  # grid error ~1e-5


def test_gibbs_recovers_the_rates_of_an_agent_simulation(silent, gibbs_fit):
    assert gibbs_fit.attrs["method"] == "gibbs" and gibbs_fit.attrs["drop_off"] == "silent"
    summary = az.summary(gibbs_fit, var_names=["rate"])
    assert summary["r_hat"].max() <= 1.01 and summary["ess_bulk"].min() >= 400
    mean, sd, _ = _moments(gibbs_fit)
    truth = np.array([TRUTH[e] for e in gibbs_fit.posterior["edge"].values])
    z = (mean - truth) / sd
    assert np.all(np.abs(z) < 3), dict(zip(TRUTH, z.round(2), strict=True))


def test_gibbs_and_nuts_agree_on_silent_drop_off(gibbs_fit, nuts_silent):
    _assert_agree(gibbs_fit, nuts_silent)


def test_replicated_counts_match_the_observed_ones(gibbs_fit):
    rep = gibbs_fit.posterior_predictive["transitions"]
    obs = gibbs_fit.observed_data["transitions"]
    z = (rep.mean(("chain", "draw")) - obs) / rep.std(("chain", "draw"))
    observed_edges = [e for e in obs["edge"].values if not e.endswith("lost")]
    assert np.all(np.abs(z.sel(edge=observed_edges).values) < 3)
    # drop-off to lost is never recorded here: no replicated exits either
    assert int(rep.sel(edge="a -> lost").sum()) == 0


def test_drop_off_seen_only_through_silence_is_noted_with_numbers(gibbs_fit):
    notes = json.loads(gibbs_fit.attrs["notes"])
    assert any(
        n.startswith("a → lost is never recorded, only inferred from silence") for n in notes
    )
    assert all("of its mean" in n for n in notes)


# --- the contract -------------------------------------------------------------------


def test_fit_follows_the_contract_and_a_seed_repeats_it(observed):
    fit = fit_journeys(observed, draws=50, chains=2, seed=9)
    again = fit_journeys(observed, draws=50, chains=2, seed=9)
    rate = fit.posterior["rate"]
    assert rate.dims == ("chain", "draw", "segment", "edge")
    assert list(rate["edge"].values) == list(TRUTH)  # stage order, lost included
    assert fit.posterior["arrivals"].dims == ("chain", "draw", "segment", "channel")
    assert fit.posterior_predictive["transitions"].shape == rate.shape
    assert fit.observed_data["transitions"].dims == ("segment", "edge")
    assert not fit.sample_stats["diverging"].any()
    assert {"method", "sampler", "draws", "chains", "tune", "seed", "notes"} <= set(fit.attrs)
    assert isinstance(json.loads(fit.attrs["notes"]), list)
    np.testing.assert_array_equal(rate.values, again.posterior["rate"].values)
    arrivals = fit.posterior["arrivals"].mean().item()
    assert arrivals == pytest.approx(15.0, rel=0.15)  # 15 a day simulated


def test_a_method_that_does_not_fit_the_data_is_refused(silent):
    with pytest.raises(ScenarioError, match="conjugate"):
        fit_journeys(silent, method="conjugate")
    with pytest.raises(ScenarioError, match="not in the data"):
        fit_journeys(silent, edges=[("a", "z")])
    with pytest.raises(ScenarioError, match="does not allow: b -> a"):
        fit_journeys(silent, edges=[("a", "b"), ("b", "c"), ("c", "c")])


def test_sampler_falls_back_to_pymc_when_nutpie_fails(monkeypatch):
    import nutpie
    import pymc as pm

    def broken(*args, **kwargs):
        raise RuntimeError("Assertion 'PyArray_NDIM(V3) == 1' failed")

    monkeypatch.setattr(nutpie, "compile_pymc_model", broken)
    with pm.Model() as model:
        pm.Normal("x")
    idata = sample(model, draws=100, tune=100, chains=2, seed=1)
    assert idata.attrs["sampler"] == "pymc"
    assert "nutpie failed" in json.loads(idata.attrs["notes"])[0]
    assert "diverging" in idata.sample_stats


# --- campaigns ----------------------------------------------------------------------


CAMPAIGN = """arrivals: {per_day: 30, stage: a}
seed: 8
baseline:
  campaigns:
    promo:
      start: 2026-01-29
      end: 2026-02-25
      effects: [{edge: a -> b, lift: 2.0}, {arrivals: "*", lift: 1.5}]
"""


def test_campaign_lift_is_recovered_from_journeys(tmp_path):
    stats = simulate(tmp_path, CAMPAIGN, 84, period_days=7.0)  # four weeks of twelve
    path = tmp_path / "campaigns.yaml"
    path.write_text(
        "campaigns:\n  promo:\n    start: 2026-01-29\n    end: 2026-02-25\n"
        "    effects: [{edge: a -> b, lift: 1.5}, {arrivals: '*', lift: 1.2}]\n"  # centres only
    )
    fit = fit_journeys(
        stats, campaigns=campaigns_for_stats(stats, path), sampler="pymc", draws=800, chains=2,
        seed=4,
    )  # fmt: skip
    lift = fit.posterior["lift"]
    assert lift["effect"].values.tolist() == ["promo: a -> b", "promo: arrivals:*"]
    assert lift["campaign"].values.tolist() == ["promo", "promo"]
    assert lift["target"].values.tolist() == ["a -> b", "arrivals:*"]
    z = (lift.mean(("chain", "draw")) - [2.0, 1.5]) / lift.std(("chain", "draw"))
    assert np.all(np.abs(z.values) < 3), z.values
    arrivals = fit.posterior["arrivals"]  # at zero pressure: 30 a day
    assert abs(arrivals.mean().item() - 30.0) < 3 * arrivals.std().item()
    mean, sd, _ = _moments(fit)
    truth = np.array([TRUTH[e] for e in fit.posterior["edge"].values])
    assert np.all(np.abs(mean - truth) < 3 * sd)
    assert int(fit.sample_stats["diverging"].sum()) == 0


def test_campaign_spend_comes_from_the_spend_csv(tmp_path):
    (tmp_path / "spend.csv").write_text("date,promo\n2026-01-02,100\n2026-01-03,0\n")
    (tmp_path / "c.yaml").write_text(
        "promo:\n  start: 2026-01-02\n  end: 2026-01-03\n  carryover: 0.5\n"
        "  half_saturation: 100\n  effects: [{edge: a -> b, lift: 2}]\n"
    )
    [c] = read_campaigns(
        tmp_path / "c.yaml", start=START.date(), n_days=4, spend_csv=tmp_path / "spend.csv"
    )
    np.testing.assert_allclose(c.pressure(), [0.0, 0.5, 1 / 3, 0.2])


def test_a_bad_campaigns_file_names_the_line(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("campaigns:\n  promo:\n    effects: [{edge: a -> b, lift: -1}]\n")
    with pytest.raises(ScenarioError) as info:
        read_campaigns(path, start=START.date(), n_days=10)
    problem = info.value.problems[0]
    assert problem.line == 3 and problem.path[:2] == ("campaigns", "promo")


# --- coverage (slow) ----------------------------------------------------------------


@pytest.mark.slow
def test_gibbs_intervals_cover_the_truth_90_percent_of_the_time():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "fit_coverage.py"
    spec = importlib.util.spec_from_file_location("fit_coverage", path)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    cov, _ = bench.coverage(200, simulator="agents")  # journeys from the agent engine
    # 200 data sets: binomial se 2.1 points; the bar, 90 ± 5, is 2.4 se
    assert cov.between(0.85, 0.95).all(), cov


@pytest.mark.slow
def test_segments_are_fitted_each_with_its_own_rates(tmp_path):
    body = (
        "arrivals: {per_day: 30, stage: a}\nseed: 12\nsegments:\n"
        "  fast: {share: 0.5, stages: {a: {rates: {b: 0.2, lost: 0.05}}}}\n"
        "  slow: {share: 0.5}\n"
    )
    stats = simulate(tmp_path, body, 90)
    fit = fit_journeys(stats, sampler="pymc", draws=800, chains=2, seed=3)
    rate = fit.posterior["rate"]
    assert list(rate["segment"].values) == ["fast", "slow"]
    mean, sd = rate.mean(("chain", "draw")), rate.std(("chain", "draw"))
    for segment in ("fast", "slow"):
        truth = dict(TRUTH, **({"a -> b": 0.2} if segment == "fast" else {}))
        expected = np.array([truth[e] for e in rate["edge"].values])
        z = (mean.sel(segment=segment).values - expected) / sd.sel(segment=segment).values
        assert np.all(np.abs(z) < 3), (segment, z.round(2))
    assert int(fit.sample_stats["diverging"].sum()) == 0
    assert any("(segment fast)" in n for n in json.loads(fit.attrs["notes"]))


def test_recorded_exits_in_a_silent_fit_are_cancellations_beside_silent_drop_off(observed):
    """All exits recorded but read as silent: the cancellation hazard carries the exit
    rate, silent drop-off stays near zero, and their sum is the true rate."""
    fit = fit_journeys(observed, drop_off="silent", draws=1000, tune=300, chains=4, seed=6)
    assert fit.attrs["method"] == "gibbs" and fit.attrs["drop_off"] == "silent"
    mean, sd, _ = _moments(fit)
    truth = np.array([TRUTH[e] for e in fit.posterior["edge"].values])
    assert np.all(np.abs(mean - truth) < 3 * sd)
    exact = fit_journeys(observed, draws=1000, chains=4, seed=6)  # observed: conjugate
    m_exact = _moments(exact)[0]
    np.testing.assert_allclose(mean, m_exact, rtol=0.1)


def test_drop_off_from_a_stage_never_left_is_the_prior_and_is_said_so():
    """Nobody is ever seen leaving b: silence there is as likely still-there as lost, so
    b -> lost keeps its exponential prior (sd = mean) and the notes say why."""
    rng = np.random.default_rng(4)
    moved = rng.uniform(0, 20, 30)
    log = pd.DataFrame(
        {
            "customer_id": np.r_[np.arange(60), np.arange(30)],
            "timestamp": START + pd.to_timedelta(np.r_[np.zeros(60), moved], unit="D"),
            "stage": ["a"] * 60 + ["b"] * 30,
        }
    ).sort_values(["customer_id", "timestamp"])
    stats = journey_stats(log, ("a", "b"), end=START + pd.Timedelta(days=30))
    fit = fit_journeys(stats, draws=2000, chains=4, seed=2)
    b_lost = fit.posterior["rate"].sel(edge="b -> lost").values.ravel()
    assert b_lost.std() / b_lost.mean() == pytest.approx(1.0, abs=0.1)
    notes = json.loads(fit.attrs["notes"])
    assert any(n.startswith("b → lost: nobody is ever seen leaving b") for n in notes)
