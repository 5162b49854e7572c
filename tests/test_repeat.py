"""A repeat stage fitted customer by customer (``--heterogeneity gamma``) and nowcasts.

Journeys are simulated with the Pareto/NBD process (each customer's repeat and silent
drop-out rates drawn from gamma distributions); the fit sees them up to a cutoff and
forecasts what known customers do after it, which the rest of the simulation knows.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, special
from typer.testing import CliRunner

from funnelsim.cli import app
from funnelsim.data.synthetic import simulate_repeat_journeys
from funnelsim.inference.backtest import forecast_entries
from funnelsim.inference.fitted import FittedFunnel
from funnelsim.inference.nowcast import nowcast
from funnelsim.inference.repeat import (
    DAY_NS,
    RepeatModel,
    homogeneous_terms,
    repeat_histories,
)
from tests.test_frailty import pareto_nbd_hyp2f1

runner = CliRunner()
START = pd.Timestamp("2025-01-01")
TRUTH = {"r": 0.6, "alpha": 20.0, "s": 0.8, "beta": 120.0}
DAYS, CUTOFF = 540.0, 450.0


def simulate_journeys(n: int, rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The Pareto/NBD process as a journey (visit, then purchases), with ``t`` in days."""
    log, truth = simulate_repeat_journeys(n, **TRUTH, days=DAYS, start=str(START.date()), seed=rng)
    log["t"] = (log["timestamp"] - START) / pd.Timedelta(days=1)
    truth = truth.rename(columns={"first_purchase": "enter", "dropout": "death"})
    return log, truth


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """3,000 simulated customers; the log up to the cutoff fitted through the CLI."""
    folder = tmp_path_factory.mktemp("repeat")
    log, truth = simulate_journeys(3_000, np.random.default_rng(2026))
    seen = log[log["t"] <= CUTOFF]
    path = folder / "history.csv"
    seen[["customer_id", "timestamp", "stage"]].to_csv(path, index=False)
    fit_path = folder / "fit.nc"
    end = (START + pd.Timedelta(days=CUTOFF)).isoformat()
    result = runner.invoke(
        app,
        ["fit", str(path), "-o", str(fit_path), "--heterogeneity", "gamma", "--end", end,
         "--draws", "400", "--tune", "400", "--chains", "2", "--seed", "7"],
        terminal_width=80,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return {"log": log, "truth": truth, "fit": fit_path, "output": result.output}


def test_histories_put_visits_end_to_end_and_count_exits() -> None:
    day = DAY_NS
    ids = np.array(["a", "a", "a", "a", "a", "b", "b", "c"], dtype=object)
    ns = np.array([0, 1, 3, 4, 10, 2, 6, 5]) * day
    stage = np.array(
        ["visit", "buy", "buy", "advocacy", "buy", "buy", "lost", "visit"], dtype=object
    )
    h = repeat_histories(ids, ns, stage, "buy", end_ns=20 * day)
    assert h.customer_id.tolist() == ["a", "b"]  # c never bought
    # a: buy 1→3 (repeat at 3), leaves at 4, back at 10 (a re-entry, not a repeat) to 20
    assert h.x.tolist() == [1, 0]
    assert h.T.tolist() == [3.0 + 10.0, 4.0]
    assert h.t_x.tolist() == [3.0, 0.0]  # a's re-entry is its last event in the stage
    assert h.exited.tolist() == [False, True]  # b's recorded exit ends its follow-up
    assert h.targets == ("advocacy", "lost")
    assert h.exits.tolist() == [[1, 0], [0, 1]]


@pytest.mark.slow  # a PyMC fit of thousands of customers
def test_histories_of_simulated_journeys(world: dict) -> None:
    log = world["log"]
    seen = log[(log["t"] <= CUTOFF) & (log["stage"] == "purchase")]
    ns = (seen["timestamp"].to_numpy().astype("datetime64[ns]")).astype(np.int64)
    end = (START + pd.Timedelta(days=CUTOFF)).value
    h = repeat_histories(
        seen["customer_id"].to_numpy(), ns, seen["stage"].to_numpy(object), "purchase", end_ns=end
    )
    by = seen.groupby("customer_id")["t"]
    assert h.x.tolist() == (by.size() - 1).tolist()
    np.testing.assert_allclose(h.T, CUTOFF - by.min().to_numpy(), atol=1e-6)
    np.testing.assert_allclose(h.t_x, (by.max() - by.min()).to_numpy(), atol=1e-6)


def test_one_rate_for_everyone_is_the_limit_of_gamma_rates() -> None:
    """Gamma rates with a huge shape are one rate: the two likelihoods must agree."""
    x, t_x, T = np.array([0, 2, 7]), np.array([0.0, 5.0, 40.0]), np.array([30.0, 20.0, 90.0])
    lam, mu, nu = 0.1, 0.02, 0.01
    big = 1e7
    post = {"repeat_r": [[big]], "repeat_alpha": [[big / lam]], "dropout_s": [[big]],
            "dropout_beta": [[big / mu]]}  # fmt: skip
    exits = {"stage_exit_rate": (("chain", "draw", "exit"), [[[nu]]])}
    import xarray as xr

    coords = {"exit": ["advocacy"]}
    gamma = xr.Dataset({k: (("chain", "draw"), v) for k, v in post.items()} | exits, coords=coords)
    none = xr.Dataset(
        {"repeat_lambda": (("chain", "draw"), [[lam]]), "dropout_mu": (("chain", "draw"), [[mu]])}
        | exits,
        coords=coords,
    )
    from funnelsim.inference.repeat import RepeatHistories

    h = RepeatHistories(
        "buy", np.arange(3), x, t_x, T, np.array([False, False, True]), ("advocacy",),
        np.array([[0], [0], [1]]),
    )  # fmt: skip
    g, o = RepeatModel(gamma, "gamma"), RepeatModel(none, "none")
    np.testing.assert_allclose(g.loglik(h), o.loglik(h), rtol=1e-5)
    np.testing.assert_allclose(g.p_alive(h), o.p_alive(h), rtol=1e-5)
    np.testing.assert_allclose(g.expected_repeats(h, 30.0), o.expected_repeats(h, 30.0), rtol=1e-5)
    # and the homogeneous "still there" term is the survival of all three hazards
    alive, _ = homogeneous_terms(x, t_x, T, lam, mu, nu)
    np.testing.assert_allclose(alive, x * np.log(lam) - (lam + mu + nu) * T)


@pytest.mark.slow  # a PyMC fit of thousands of customers
def test_the_fit_recovers_the_population_and_prefers_it_by_loo(world: dict) -> None:
    fit = FittedFunnel.load(world["fit"])
    post = fit.idata.posterior
    for name, key in (("repeat_r", "r"), ("repeat_alpha", "alpha"), ("dropout_s", "s"),
                      ("dropout_beta", "beta")):  # fmt: skip
        lo, hi = np.quantile(post[name].values, [0.005, 0.995])
        assert lo < TRUTH[key] < hi, (name, lo, hi)
    loo = fit.repeat_info["loo"]
    assert loo["best"] == "gamma" and loo["diff"] > 4 * loo["diff_se"]
    text = " ".join(world["output"].split())
    assert "customers differ" in text and "everyone alike" in text and "LOO" in text
    report = world["fit"].with_suffix(".report.html").read_text()
    assert "customers, one by one" in report and "alt='repeat rates'" in report
    # 2 chains × 400 draws: too few for the CLI's bars (R-hat ≤ 1.01 and ESS ≥ 400 on
    # 4 × 1,000), enough to see that the chains mix
    diag = fit.diagnostics()
    assert diag.rhat_max <= 1.03 and diag.divergences == 0 and diag.ess_bulk_min > 200


def _known_repeats_after_cutoff(log: pd.DataFrame) -> int:
    buys = log[log["stage"] == "purchase"]
    first = buys.groupby("customer_id")["t"].transform("min")
    return int(((buys["t"] > CUTOFF) & (first <= CUTOFF)).sum())


@pytest.mark.slow  # a PyMC fit of thousands of customers
def test_backtest_of_known_customers_repeats(world: dict) -> None:
    """Forecast repeats by customers who had bought by the cutoff, up to the end of the
    simulation: within 5% with the truth in the 90% interval; one rate for everyone
    misses by far more (printed beside it)."""
    fit = FittedFunnel.load(world["fit"])
    actual = _known_repeats_after_cutoff(world["log"])
    buy = list(fit.stages).index("purchase")
    totals = {
        k: forecast_entries(fit, DAYS - CUTOFF, draws=400, seed=1, heterogeneity=k)["known"][
            :, :, buy
        ].sum(axis=1)
        for k in ("gamma", "none")
    }
    err = {k: v.mean() / actual - 1.0 for k, v in totals.items()}
    print(f"\nrepeats after the cutoff: actual {actual}; customers differ "
          f"{totals['gamma'].mean():.0f} ({err['gamma']:+.1%}); everyone alike "
          f"{totals['none'].mean():.0f} ({err['none']:+.1%})")  # fmt: skip
    lo, hi = np.quantile(totals["gamma"], [0.05, 0.95])
    assert abs(err["gamma"]) < 0.05
    assert lo <= actual <= hi
    assert abs(err["none"]) > 2 * abs(err["gamma"])


@pytest.mark.slow  # a PyMC fit of thousands of customers
def test_a_scenario_from_the_fit_runs_customers_who_differ(world: dict, tmp_path: Path) -> None:
    """``fit:`` and ``population: {from_fit}`` of the heterogeneous fit: the engines run
    the repeat stage as rate classes, each replicate starting from a draw of where the
    known customers stand and which class each is in. The count engine's forecast of
    the known customers' repeats after the cutoff is within 5% of the truth with the
    truth in its 90% interval, and the expected engine's equals the nowcast's exact
    expectation (to the engines' clock); one rate for everyone is printed beside it."""
    import yaml

    from funnelsim.engines.counts import CountEngine
    from funnelsim.engines.expected import ExpectedEngine
    from funnelsim.inference import forecast
    from funnelsim.scenario import load_scenario

    days = DAYS - CUTOFF
    path = tmp_path / "next.yaml"
    body = {
        "name": "after the cutoff",
        "fit": str(world["fit"]),
        "population": {"from_fit": str(world["fit"])},
        "horizon": {"start": str((START + pd.Timedelta(days=CUTOFF)).date()),
                    "periods": int(days), "step": "day"},
        "replicates": 400,
        "seed": 5,
    }  # fmt: skip
    path.write_text(yaml.safe_dump(body))
    result = runner.invoke(app, ["run", str(path), "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    scenario = load_scenario(path)
    fit = FittedFunnel.load(world["fit"])
    buy = list(fit.stages).index("purchase")

    def known_repeats(engine, name: str) -> np.ndarray:
        model = forecast.fitted_model(scenario, 400, name, seed=5)
        start = model.initial_by_replicate().copy()
        start[:, model.stage_of != buy] = 0.0  # the known buyers alone
        raw = engine.run(model.with_replicate_initial(start), 400, seed=5)
        return raw.flows[:, :, buy, buy].sum(axis=1)

    counts = known_repeats(CountEngine(), "counts")
    mean = known_repeats(ExpectedEngine(), "expected").mean()
    h = fit.repeat_histories()
    exact = fit.repeat_model(max_draws=400).expected_repeats(h, days).sum(axis=1).mean()
    actual = _known_repeats_after_cutoff(world["log"])
    original = forecast._classes
    try:  # the journey fit's one rate for everyone in the stage
        forecast._classes = lambda *args: None
        alike = known_repeats(ExpectedEngine(), "expected").mean()
    finally:
        forecast._classes = original
    print(f"\nknown customers' repeats in the scenario: actual {actual}; classes "
          f"{counts.mean():.0f} ({counts.mean() / actual - 1:+.1%}); exact {exact:.0f}; "
          f"expected engine {mean:.0f}; one rate {alike:.0f} "
          f"({alike / actual - 1:+.1%})")  # fmt: skip
    assert abs(mean / exact - 1) < 0.01
    se = counts.std() / np.sqrt(len(counts))
    assert abs(counts.mean() - mean) < 4 * se
    assert abs(counts.mean() / actual - 1) < 0.05
    lo, hi = np.quantile(counts, [0.05, 0.95])
    assert lo <= actual <= hi


@pytest.mark.slow  # a PyMC fit of thousands of customers
def test_agrees_with_a_pareto_nbd_maximum_likelihood_reference(world: dict) -> None:
    """Fader & Hardie's hypergeometric likelihood, maximised, and their closed-form
    conditional expectation: per-customer expected repeats correlate ≥ 0.95 and the
    totals agree within 3%."""
    fit = FittedFunnel.load(world["fit"])
    h = fit.repeat_histories()
    x, t_x, T = h.x, h.t_x, h.T

    def nll(theta: np.ndarray) -> float:
        return -float(pareto_nbd_hyp2f1(x, t_x, T, *np.exp(theta)).sum())

    best = optimize.minimize(nll, np.log([1.0, 10.0, 1.0, 100.0]), method="Nelder-Mead",
                             options={"maxiter": 4000, "xatol": 1e-6, "fatol": 1e-6})  # fmt: skip
    r, alpha, s, beta = np.exp(best.x)
    ll = pareto_nbd_hyp2f1(x, t_x, T, r, alpha, s, beta)
    c = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha) + s * np.log(beta)
    alive = np.exp(c - (r + x) * np.log(alpha + T) - s * np.log(beta + T) - ll)
    t = DAYS - CUTOFF
    reference = (
        alive * (r + x) * (beta + T) / ((alpha + T) * (s - 1.0))
        * (1.0 - ((beta + T) / (beta + T + t)) ** (s - 1.0))
    )  # fmt: skip
    ours = fit.repeat_model(max_draws=400).expected_repeats(h, t).mean(axis=0)
    assert np.corrcoef(ours, reference)[0, 1] >= 0.95
    assert ours.sum() == pytest.approx(reference.sum(), rel=0.03)


@pytest.mark.slow  # a PyMC fit of thousands of customers
def test_nowcast_is_calibrated_and_its_occupancy_holds_the_truth(world: dict) -> None:
    fit = FittedFunnel.load(world["fit"])
    nc = nowcast(fit, horizon=DAYS - CUTOFF, draws=200, seed=3)
    truth = world["truth"].set_index("customer_id")
    buyers = nc.customers[nc.customers["stage"] == "purchase"]
    active = (truth.loc[buyers["customer_id"], "death"] > CUTOFF).to_numpy()
    p = buyers["p_active"].to_numpy()
    # reliability table: deciles of P(active) against who really was still active
    edges = np.quantile(p, np.linspace(0, 1, 11))
    bins = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, 9)
    for k in range(10):
        mine = bins == k
        predicted, observed = p[mine].mean(), active[mine].mean()
        se = np.sqrt(max(predicted * (1 - predicted), 0.01) / mine.sum())
        assert abs(predicted - observed) < 4 * se + 0.01, (k, predicted, observed)
    row = nc.occupancy.set_index("stage").loc["purchase"]
    sd = (row["active_p95"] - row["active_p05"]) / 3.29  # the 90% interval's width in sd
    assert abs(active.sum() - row["active_mean"]) < 3 * sd


@pytest.mark.slow  # a PyMC fit of thousands of customers
def test_nowcast_cli_writes_the_customer_list(world: dict, tmp_path: Path) -> None:
    out = tmp_path / "crm" / "customers.csv"
    result = runner.invoke(
        app, ["nowcast", str(world["fit"]), "-o", str(out), "--seed", "1"], terminal_width=80
    )
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "Where the funnel stands" in text and "Repeats in purchase" in text
    table = pd.read_csv(out)
    assert list(table.columns[:5]) == ["customer_id", "stage", "last_event", "days_silent",
                                       "p_active"]  # fmt: skip
    assert len(table) == 3_000 - int(
        (world["log"].groupby("customer_id")["t"].min() > CUTOFF).sum()
    )
    assert table["p_active"].between(0, 1).all()
    # a second run refuses to overwrite a file funnelsim did not write
    mine = tmp_path / "mine.csv"
    mine.write_text("keep me\n")
    again = runner.invoke(app, ["nowcast", str(world["fit"]), "-o", str(mine)])
    assert again.exit_code == 2 and mine.read_text() == "keep me\n"


def test_heterogeneity_needs_a_stage_with_repeats(tmp_path: Path) -> None:
    log = pd.DataFrame(
        {"customer_id": [1, 1, 2], "timestamp": ["2026-01-01", "2026-01-03", "2026-01-02"],
         "stage": ["visit", "buy", "visit"]}
    )  # fmt: skip
    path = tmp_path / "log.csv"
    log.to_csv(path, index=False)
    out = tmp_path / "f.nc"
    result = runner.invoke(app, ["fit", str(path), "-o", str(out), "--heterogeneity", "gamma"])
    assert result.exit_code == 2
    assert "no stage has repeat events" in " ".join(result.output.split())
    result = runner.invoke(
        app,
        ["fit", str(path), "-o", str(out), "--heterogeneity", "gamma", "--repeat-stage", "vist"],
    )
    assert result.exit_code == 2 and "'vist' is not in the data" in result.output
    result = runner.invoke(app, ["fit", str(path), "-o", str(out), "--heterogeneity", "classes:1"])
    assert result.exit_code == 2 and "classes:K with K from 2 to 8" in " ".join(
        result.output.split()
    )
    assert not out.exists() and "Traceback" not in result.output


def test_nowcast_of_a_fit_without_customers_says_so(tmp_path: Path) -> None:
    result = runner.invoke(app, ["nowcast", str(tmp_path / "missing.nc")])
    assert result.exit_code == 2 and "fit file not found" in " ".join(result.output.split())


def test_a_sampler_that_cannot_start_is_a_clear_error() -> None:
    import pymc as pm
    import pytensor.tensor as pt

    from funnelsim.errors import SamplingFailed
    from funnelsim.inference.sampling import sample

    with pm.Model() as model:
        x = pm.Normal("x")
        pm.Potential("broken", pt.log(x * 0.0 - 1.0))  # NaN everywhere
    with pytest.raises(SamplingFailed, match="could not start"):
        sample(model, sampler="pymc", draws=10, tune=10, chains=1, seed=1)


def _two_kinds(n: int, rng: np.random.Generator):
    """Histories of two kinds of customer: 60% rarely buy again and stay a long time,
    40% buy often but leave sooner; followed 30–365 days; and what the next 60 days hold."""
    from funnelsim.inference.repeat import RepeatHistories

    frequent = rng.random(n) < 0.4
    lam = np.where(frequent, 0.15, 0.01)
    mu = np.where(frequent, 1 / 150, 1 / 400)
    follow = rng.uniform(30.0, 365.0, n)
    death = rng.exponential(1.0, n) / mu
    active = np.minimum(death, follow)
    x = rng.poisson(lam * active)
    t_x = np.where(x > 0, active * rng.beta(np.maximum(x, 1), 1.0), 0.0)
    h = RepeatHistories(
        "buy", np.arange(n), x, t_x, follow, np.zeros(n, bool), (), np.zeros((n, 0), np.int64)
    )
    future = rng.poisson(lam * np.clip(np.minimum(death, follow + 60.0) - follow, 0, None))
    return h, death > follow, future


@pytest.fixture(scope="module")
def personas():
    from funnelsim.inference.repeat import fit_repeat_stage

    h, alive, future = _two_kinds(2_500, np.random.default_rng(8))
    fits = {k: fit_repeat_stage(h, k, draws=400, tune=400, chains=2, seed=2)
            for k in ("classes:2", "none")}  # fmt: skip
    return h, alive, future, fits


@pytest.mark.slow  # a PyMC fit of thousands of customers
def test_two_kinds_of_customer_are_found_and_preferred_by_loo(personas) -> None:
    from funnelsim.inference.repeat import class_summary, compare_loo

    h, _, _, fits = personas
    post = fits["classes:2"]
    assert post.attrs["diverging"] == 0
    for name, truth in (("class_weight", [0.6, 0.4]), ("class_repeat_rate", [0.01, 0.15]),
                        ("class_dropout_rate", [1 / 400, 1 / 150])):  # fmt: skip
        lo, hi = np.quantile(post[name].values.reshape(-1, 2), [0.005, 0.995], axis=0)
        assert np.all((lo < truth) & (truth < hi)), (name, lo, hi)
    models = {k: RepeatModel(v, k, max_draws=300) for k, v in fits.items()}
    loo = compare_loo(models, h)
    assert loo["best"] == "classes:2" and loo["diff"] > 4 * loo["diff_se"]
    table = class_summary(models["classes:2"])
    assert table["repeats_per_30_days"].is_monotonic_increasing  # ordered: no label switching


@pytest.mark.slow  # a PyMC fit of thousands of customers
def test_kinds_of_customer_nowcast_and_forecast(personas) -> None:
    """P(alive) calibrated against who really stayed; simulated futures add up to the
    expected repeats; the forecast holds the simulated truth."""
    h, alive, future, fits = personas
    model = RepeatModel(fits["classes:2"], "classes:2", max_draws=300)
    p = model.p_alive(h).mean(axis=0)
    edges = np.quantile(p, np.linspace(0, 1, 6))
    bins = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, 4)
    for k in range(5):
        mine = bins == k
        se = np.sqrt(max(p[mine].mean() * (1 - p[mine].mean()), 0.01) / mine.sum())
        assert abs(p[mine].mean() - alive[mine].mean()) < 4 * se + 0.01
    expected = model.expected_repeats(h, 60.0).sum(axis=1)
    simulated = model.simulate(h, 60.0, np.random.default_rng(0)).sum(axis=1)
    se = simulated.std() / np.sqrt(len(simulated))
    assert abs(simulated.mean() - expected.mean()) < 4 * se + 0.01 * expected.mean()
    lo, hi = np.quantile(simulated, [0.005, 0.995])
    assert lo <= future.sum() <= hi


def test_a_chain_stuck_in_a_poorer_explanation_is_left_out() -> None:
    """Mixtures can have more than one explanation of the same customers. Three chains
    at the true kinds and one at a poorer mode (a kind that rarely comes back and
    leaves at once): the poorer chain is dropped and the gap recorded; chains that
    agree are all kept."""
    import xarray as xr

    from funnelsim.inference.repeat import _drop_stuck_chains

    h, _, _ = _two_kinds(1_500, np.random.default_rng(3))
    rng = np.random.default_rng(0)
    good = {"class_weight": [0.6, 0.4], "class_repeat_rate": [0.01, 0.15],
            "class_dropout_rate": [1 / 400, 1 / 150]}  # fmt: skip
    poor = {"class_weight": [0.3, 0.7], "class_repeat_rate": [0.001, 0.09],
            "class_dropout_rate": [0.05, 1 / 300]}  # fmt: skip

    def posterior(chains: list[dict]) -> xr.Dataset:
        data = {
            name: (("chain", "draw", "class"),
                   np.stack([np.asarray(c[name]) * np.exp(rng.normal(0, 0.01, (50, 2)))
                             for c in chains]))
            for name in good
        }  # fmt: skip
        return xr.Dataset(data)

    out = _drop_stuck_chains(posterior([good, good, poor, good]), h, "classes")
    assert out.attrs["dropped_chains"] == [2] and out.attrs["mode_gap"] > 100
    assert out.sizes["chain"] == 3
    np.testing.assert_allclose(out["class_repeat_rate"].mean(("chain", "draw")), [0.01, 0.15],
                               rtol=0.01)  # fmt: skip
    kept = _drop_stuck_chains(posterior([good] * 4), h, "classes")
    assert "dropped_chains" not in kept.attrs and kept.sizes["chain"] == 4
