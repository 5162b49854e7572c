"""`funnelsim fit --kind counts` on the shipped dashboard example, as a planner runs it:
the tables, the report, a forecast from the fit, the PyTensor model against its numpy
twin — and the mistakes a hurried planner makes (exit 2, nothing written)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from funnelsim.cli import app
from tests.conftest import SCENARIOS

runner = CliRunner()
DATA = SCENARIOS / "data"


def _flat(text: str) -> str:
    return " ".join(text.split())


def _args(folder: Path, counts: str = "counts.csv", spend: str = "spend.csv") -> list[str]:
    return [
        "fit", str(folder / counts), "--kind", "counts", "--spend", str(folder / spend),
        "--funnel", str(folder / "funnel.yaml"), "--priors", str(folder / "priors.yaml"),
    ]  # fmt: skip


@pytest.fixture()
def copy(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    shutil.copytree(DATA, folder)
    return folder


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The shipped example fitted once, holding out its last 8 weeks."""
    out = tmp_path_factory.mktemp("fit") / "dash.nc"
    result = runner.invoke(
        app,
        [*_args(DATA), "--holdout", "8", "--draws", "500", "--tune", "500", "--chains", "2",
         "--seed", "4", "-o", str(out)],
        terminal_width=80,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return out, result.output


def test_counts_fit_recovers_the_shipped_truth(fitted: tuple[Path, str]) -> None:
    out, output = fitted
    truth = yaml.safe_load((DATA / "truth.yaml").read_text())
    effects = pd.read_csv(out.with_name("dash.effects.csv"))
    assert {"carryover_mean", "half_life_days_mean", "half_saturation_mean"} <= set(effects)
    for rec in effects.itertuples():
        true = truth["campaigns"][rec.campaign]
        assert rec.lift_hdi_low <= true["lift"] <= rec.lift_hdi_high, rec
    rates = pd.read_csv(out.with_name("dash.rates.csv"))
    inside = [
        row.rate_hdi_low
        <= truth["rates_per_day"][f"{row.source} -> {row.target}"]
        <= row.rate_hdi_high
        for row in rates.itertuples()
    ]
    assert sum(inside) >= len(inside) - 1  # 94% intervals: one miss in eight is fair
    text = _flat(output)
    assert "Campaign lifts" in text and "wrote dash.nc" in text


def test_counts_fit_writes_contributions_holdout_and_report(fitted: tuple[Path, str]) -> None:
    out, _ = fitted
    contrib = pd.read_csv(out.with_name("dash.contributions.csv"))
    assert list(contrib.columns) == [
        "campaign", "stage", "contribution_mean", "contribution_hdi_low", "contribution_hdi_high",
    ]  # fmt: skip
    conv = contrib[contrib["stage"] == "conversion"].set_index("campaign")
    assert (conv["contribution_hdi_low"] > 0).all()  # every campaign brought conversions
    upper = contrib[(contrib["campaign"] == "social") & (contrib["stage"] == "awareness")]
    assert abs(float(upper["contribution_mean"].iloc[0])) < conv.loc["social", "contribution_mean"]
    held = pd.read_csv(out.with_name("dash.holdout.csv"))
    assert list(held["periods"]) == [8] * 5
    # 40 held-out counts: pooled 90% coverage within 3 binomial standard errors
    n = float(held["periods"].sum())
    assert held["coverage_90"].mean() >= 0.9 - 3 * np.sqrt(0.9 * 0.1 / n)
    assert (held["mean_abs_pct_error"] < 5).all()
    html = out.with_name("dash.report.html").read_text()
    for heading in ("Holdout check", "What each campaign brought", "Response curves",
                    "What the counts pin down"):  # fmt: skip
        assert heading in html


def test_a_scenario_forecasts_from_a_counts_fit(fitted: tuple[Path, str], tmp_path: Path) -> None:
    out, _ = fitted
    scenario = tmp_path / "next.yaml"
    scenario.write_text(
        yaml.safe_dump(
            {
                "name": "next quarter",
                "horizon": {"start": "2026-01-01", "periods": 13, "step": "week"},
                "fit": str(out),
                "arrivals": {"per_day": 1500, "stage": "awareness"},
                "economics": {"value_per_conversion": 40},
                "replicates": 50,
                "seed": 1,
            }
        )
    )
    result = runner.invoke(app, ["run", str(scenario), "-o", str(tmp_path / "out"), "-q"])
    assert result.exit_code == 0, result.output
    summary = pd.read_csv(tmp_path / "out" / "summary.csv").set_index("metric")
    conversions = summary.loc["conversions"]
    assert 0 < conversions["p05"] < conversions["mean"] < conversions["p95"]


def test_a_backtest_of_counts_compares_the_held_out_weeks(fitted: tuple[Path, str]) -> None:
    """The backtest of a fit that held out its last 8 weeks (what ``funnelsim backtest
    --kind counts --cutoff`` computes after its fit): one row per entries series, the
    actual totals recounted from counts.csv, the forecast's intervals holding them."""
    from funnelsim.inference.backtest import counts_backtest
    from funnelsim.inference.fitted import FittedFunnel

    bt = counts_backtest(FittedFunnel.load(fitted[0]))
    raw = pd.read_csv(DATA / "counts.csv", parse_dates=["period"])
    weeks = sorted(raw["period"].unique())[-8:]
    assert bt.cutoff == weeks[0] and bt.end == weeks[-1] + pd.Timedelta(days=7)
    held = raw[raw["period"].isin(weeks) & (raw["kind"] == "entries")]
    totals = bt.totals.set_index("stage")
    assert set(totals["cohort"]) == {"all"}
    assert totals["actual"].to_dict() == held.groupby("stage")["count"].sum().to_dict()
    inside = (totals["forecast_p05"] <= totals["actual"]) & (
        totals["actual"] <= totals["forecast_p95"]
    )
    assert inside.sum() >= len(totals) - 1, totals
    assert len(bt.periods) == 8 * len(totals)
    err = (totals["forecast_mean"] / totals["actual"] - 1).abs()
    assert (err < 0.05).all(), err


@pytest.mark.slow  # a second NUTS fit of the counts (the compile is shared)
def test_the_backtest_command_on_counts(fitted: tuple[Path, str], tmp_path: Path) -> None:
    """``--kind counts --cutoff`` at the first held-out week fits what the fixture
    fitted and writes the same comparison."""
    from funnelsim.inference.backtest import counts_backtest
    from funnelsim.inference.fitted import FittedFunnel

    out = tmp_path / "bt"
    args = _args(DATA)[1:]
    result = runner.invoke(
        app,
        ["backtest", *args, "--cutoff", "2025-11-03", "--draws", "500", "--tune", "500",
         "--chains", "2", "--seed", "4", "-o", str(out)],
        terminal_width=80,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    text = _flat(result.output)
    assert "Backtest: fitted up to 2025-11-03" in text and "Kalman filter" in text
    got = pd.read_csv(out / "backtest.csv")
    want = counts_backtest(FittedFunnel.load(fitted[0])).totals
    assert got["actual"].tolist() == want["actual"].tolist()
    assert (out / "backtest.png").stat().st_size > 10_000 and (out / "fit.nc").is_file()


def test_a_backtest_of_counts_needs_weeks_on_both_sides(tmp_path: Path) -> None:
    out = tmp_path / "bt"
    for cutoff, message in (("2024-01-15", "leaves 2 periods to fit"),
                            ("2026-03-01", "and 0 to compare")):  # fmt: skip
        result = runner.invoke(
            app, ["backtest", *_args(DATA)[1:], "--cutoff", cutoff, "-o", str(out)],
            terminal_width=80,
        )  # fmt: skip
        assert result.exit_code == 2, result.output
        assert message in _flat(result.output) and "Traceback" not in result.output
        assert not out.exists()


def test_rolling_cutoffs_of_counts_stop_where_a_whole_horizon_is_left() -> None:
    from funnelsim.inference.backtest import _data_end, rolling_cutoffs

    end = _data_end("counts", DATA / "counts.csv", {"funnel": str(DATA / "funnel.yaml")})
    assert end == pd.Timestamp("2025-12-29")  # the last week starts on 2025-12-22
    cuts = rolling_cutoffs("2025-09-01", 28.0, end, 56.0)
    assert [f"{c:%Y-%m-%d}" for c in cuts] == ["2025-09-01", "2025-09-29", "2025-10-27"]


def test_the_model_and_its_numpy_twin_agree() -> None:
    """The PyTensor graph the sampler uses and the numpy recursion that computes
    contributions and forecasts give the same expected counts at random parameters."""
    from funnelsim.inference.flows import Params, mean_flows

    design, model = _example_model()
    names = ["rate", "log_lift", "carryover", "half_saturation", "level", "trend", "yearly",
             "initial"]  # fmt: skip
    fn = _mu_loglik_and(model, names)
    rng = np.random.default_rng(5)
    start = model.initial_point()
    for _ in range(3):
        point = {k: v + rng.normal(0.0, 0.5, np.shape(v)) for k, v in start.items()}
        got, _, *values = fn(point)
        v = dict(zip(names, values))
        params = Params(
            rate=v["rate"][None], log_lift=v["log_lift"][None], carryover=v["carryover"][None],
            half_saturation=v["half_saturation"][None], level=v["level"][None],
            trend=np.array([v["trend"]]), yearly=v["yearly"][None], weekly=np.zeros((1, 0)),
            initial=v["initial"][None],
        )  # fmt: skip
        entries, occupancy = mean_flows(design.grid, params)
        want = np.concatenate([entries, occupancy], axis=-1)[0][..., design.series_index]
        np.testing.assert_allclose(got, want, rtol=1e-10)
        _assert_same_loglik(model, fn, point, design, params)


def test_the_sampled_variables_keep_the_priors_on_rates_and_arrival_level() -> None:
    """The model samples each stage's total exit rate and split shares, and the entry
    stage's entries (arrivals plus people moving back), and corrects the prior: minus
    the likelihood, its log density is the priors' — standard normal ``z`` of every
    rate, effect, start and arrival level, normal trend and season — up to a constant,
    at any parameters; and the change of variables has unit Jacobian, so the posterior
    is the one of the priors as written."""
    import pytensor.tensor as pt
    from pytensor.gradient import jacobian
    from scipy import stats

    design, model = _example_model()
    logp = model.compile_logp()
    (obs,) = [p for p in model.potentials if p.name == "obs"]
    values = [model.rvs_to_values[model[n]] for n in ("z_exits", "z_entries")]
    new = pt.concatenate(model.replace_rvs_by_values([model["z_rate"], model["z_level"]]))
    jac = pt.concatenate(jacobian(new, values), axis=1)  # square: as many old as new
    outs = [*model.replace_rvs_by_values([obs, model["z_rate"], model["z_level"]]), jac]
    parts = model.compile_fn(outs, inputs=model.value_vars, on_unused_input="ignore")
    rng = np.random.default_rng(8)
    start = model.initial_point()
    gaps = []
    for _ in range(4):
        point = {k: v + rng.normal(0.0, 0.7, np.shape(v)) for k, v in start.items()}
        loglik, z_rate, z_level, jac_at = parts(point)
        prior = stats.norm.logpdf(z_level).sum() + stats.norm.logpdf(z_rate).sum()
        for name, value in point.items():
            if name == "trend":
                prior += stats.norm.logpdf(value, 0.0, design.trend_sd).sum()
            elif name == "yearly":
                prior += stats.norm.logpdf(value, 0.0, design.seasonal_sd).sum()
            elif name not in ("z_entries", "z_exits"):
                assert name.startswith("z_"), name
                prior += stats.norm.logpdf(value).sum()
        gaps.append(logp(point) - loglik - prior)
        assert abs(np.linalg.det(jac_at)) == pytest.approx(1.0, rel=1e-9)
        assert not np.allclose(z_level, point["z_entries"])  # real changes of variables
        assert not np.allclose(z_rate, point["z_exits"])
    np.testing.assert_allclose(gaps, gaps[0], atol=1e-8)


def _example_model():  # type: ignore[no-untyped-def]
    """The design and PyMC model of the shipped example's first 30 weeks."""
    from funnelsim.data.counts import load_counts
    from funnelsim.inference.aggregate import build_model, design_for
    from funnelsim.inference.api import load_funnel_file
    from funnelsim.inference.count_priors import read_count_priors

    funnel = load_funnel_file(DATA / "funnel.yaml")
    priors = read_count_priors(DATA / "priors.yaml")
    data = load_counts(
        DATA / "counts.csv",
        DATA / "spend.csv",
        stages=funnel.stages,
        campaigns=list(priors.campaigns),
    ).head(30)
    design = design_for(data, funnel, priors)
    return design, build_model(design)


def _mu_loglik_and(model, names: list[str]):  # type: ignore[no-untyped-def]
    """A function of the model's values giving the expected counts ``mu``, the
    likelihood term of the counts and the named variables."""
    from pytensor.graph.traversal import ancestors

    (obs,) = [p for p in model.potentials if p.name == "obs"]
    mu = next(v for v in ancestors([obs]) if getattr(v, "name", None) == "mu")
    outs = model.replace_rvs_by_values([mu, obs, *(model[n] for n in names)])
    return model.compile_fn(outs, inputs=model.value_vars, on_unused_input="ignore")


def _assert_same_loglik(model, fn, point, design, params) -> None:  # type: ignore[no-untyped-def]
    """The sampler's likelihood of the counts (whitened by the covariance of random
    flows across all periods) is the numpy Kalman filter's at the same parameters: the
    same Gaussian, one computed at once, the other period by period."""
    from funnelsim.inference.aggregate import _NOISE_FLOOR, with_noise_model
    from funnelsim.inference.kalman import kalman

    noise = 0.02
    fixed = with_noise_model(design, params, noise=noise)
    model["whiten"].set_value(fixed.whiten)
    model["noise_level"].set_value(np.asarray(noise))
    _, potential, *_ = fn(point)
    chi2 = kalman(
        design.grid, params, design.counts.astype(float), design.series_index,
        np.full((1, len(design.series)), noise), _NOISE_FLOOR,
    )["chi2"]  # fmt: skip
    np.testing.assert_allclose(-2.0 * potential, chi2[0], rtol=1e-8)


# ---------------------------------------------------------------------- mistakes
def _fails(args: list[str], folder: Path, *expected: str) -> str:
    before = sorted(p.name for p in folder.rglob("*"))
    result = runner.invoke(app, [*args, "-o", str(folder / "fit.nc")], terminal_width=80)
    assert result.exit_code == 2, result.output
    text = _flat(result.output)
    for part in expected:
        assert part in text, text
    assert "Traceback" not in result.output
    assert sorted(p.name for p in folder.rglob("*")) == before  # nothing written
    return text


def test_negative_counts(copy: Path) -> None:
    frame = pd.read_csv(copy / "counts.csv")
    frame.loc[6, "count"] = -12
    frame.to_csv(copy / "counts.csv", index=False)
    _fails(_args(copy), copy, "negative", "row 8")


def test_a_week_missing(copy: Path) -> None:
    frame = pd.read_csv(copy / "counts.csv")
    frame = frame[frame["period"] != "2024-03-04"]
    frame.to_csv(copy / "counts.csv", index=False)
    _fails(_args(copy), copy, "2024-03-04")


def test_a_funnel_stage_missing_from_the_counts(copy: Path) -> None:
    frame = pd.read_csv(copy / "counts.csv")
    frame[frame["stage"] != "desire"].to_csv(copy / "counts.csv", index=False)
    _fails(_args(copy), copy, "desire", "latent")


def test_spend_for_an_unknown_campaign(copy: Path) -> None:
    spend = pd.read_csv(copy / "spend.csv")
    spend["radio"] = 100.0
    spend.to_csv(copy / "spend.csv", index=False)
    _fails(_args(copy), copy, "radio")


def test_a_campaign_with_no_spend(copy: Path) -> None:
    spend = pd.read_csv(copy / "spend.csv")
    spend["coupons"] = 0.0
    spend.to_csv(copy / "spend.csv", index=False)
    _fails(_args(copy), copy, "coupons", "cannot be learned")


def test_counts_need_a_funnel(copy: Path) -> None:
    args = [a for a in _args(copy)]
    i = args.index("--funnel")
    del args[i : i + 2]
    _fails(args, copy, "--funnel")


def test_a_priors_file_naming_an_edge_the_funnel_lacks(copy: Path) -> None:
    text = (copy / "priors.yaml").read_text().replace("desire -> conversion", "desire -> advocacy")
    (copy / "priors.yaml").write_text(text)
    _fails(_args(copy), copy, "desire -> advocacy", "not an edge")


def test_holdout_too_long(copy: Path) -> None:
    _fails([*_args(copy), "--holdout", "100"], copy, "--holdout")


def test_segments_have_their_own_rates_in_both_implementations() -> None:
    """Two segments of daily counts, one latent stage: the PyTensor graph (with its
    partially pooled segment rates) and the numpy twin agree draw for draw."""
    from funnelsim.data.counts import CountData
    from funnelsim.funnel import Funnel
    from funnelsim.inference.aggregate import build_model, design_for
    from funnelsim.inference.count_priors import CountPriors
    from funnelsim.inference.flows import Params, mean_flows

    funnel = Funnel.from_rates(
        {"visit": {"lead": 0.2, "lost": 0.3}, "lead": {"buy": 0.1, "lost": 0.1}, "buy": {}},
        goal="buy",
    )
    days = 60
    rng = np.random.default_rng(8)
    data = CountData(
        dates=pd.date_range("2025-03-01", periods=days, freq="D"),
        period_days=1,
        stages=("visit", "lead", "buy"),
        segments=("new", "returning"),
        series=(("visit", "entries"), ("buy", "entries")),
        counts=rng.poisson(100.0, (2, days, 2)).astype(float),
        campaigns=("search",),
        spend=rng.gamma(2.0, 50.0, (1, days + 14)),
        spend_start=pd.Timestamp("2025-02-15"),
        file="daily.csv",
    )
    priors = CountPriors.model_validate(
        {"latent": ["lead"], "campaigns": {"search": {"moves": ["visit -> lead"]}}}
    )
    design = design_for(data, funnel, priors)
    assert design.grid.weekly_terms == 2 and design.grid.spend_offset == 14
    model = build_model(design)
    names = ["rate", "log_lift", "carryover", "half_saturation", "level", "trend", "weekly",
             "initial"]  # fmt: skip
    fn = _mu_loglik_and(model, names)
    start = model.initial_point()
    point = {k: v + rng.normal(0.0, 0.5, np.shape(v)) for k, v in start.items()}
    got, _, *values = fn(point)
    v = dict(zip(names, values))
    assert not np.allclose(v["rate"][0], v["rate"][1])  # each segment its own rates
    params = Params(
        rate=v["rate"][None], log_lift=v["log_lift"][None], carryover=v["carryover"][None],
        half_saturation=v["half_saturation"][None], level=v["level"][None],
        trend=np.array([v["trend"]]), yearly=np.zeros((1, 0)), weekly=v["weekly"][None],
        initial=v["initial"][None],
    )  # fmt: skip
    entries, occupancy = mean_flows(design.grid, params)
    want = np.concatenate([entries, occupancy], axis=-1)[0][..., design.series_index]
    np.testing.assert_allclose(got, want, rtol=1e-10)
    _assert_same_loglik(model, fn, point, design, params)


def test_nowcast_of_a_counts_fit_is_the_filtered_occupancy(
    fitted: tuple[Path, str], tmp_path: Path
) -> None:
    """The people in each stage at the end of the fitted data (8 weeks before the end of
    the file): conversion's occupancy is observed, so the filter puts it near the count."""
    out, _ = fitted
    target = tmp_path / "occupancy.csv"
    result = runner.invoke(
        app, ["nowcast", str(out), "-o", str(target), "--seed", "1"], terminal_width=80
    )
    assert result.exit_code == 0, result.output
    occ = pd.read_csv(target).set_index("stage")
    assert list(occ.columns) == ["active_mean", "active_p05", "active_p95"]
    counts = pd.read_csv(DATA / "counts.csv")
    seen = counts[(counts["kind"] == "occupancy") & (counts["stage"] == "conversion")]
    last_fitted = seen.sort_values("period")["count"].iloc[-9]  # 8 weeks held out
    row = occ.loc["conversion"]
    assert abs(row["active_mean"] / last_fitted - 1) < 0.02
    assert row["active_p05"] < row["active_mean"] < row["active_p95"]
    assert (occ["active_mean"] > 0).all()
    assert "Where the funnel stands" in " ".join(result.output.split())
