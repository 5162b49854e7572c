"""Backtests and forecasts from where the funnel stands: the forward simulation against
the exact expectation of a Markov chain, the CLI on the shipped example history, and
the mistakes a hurried planner makes (a cutoff outside the data, a fit of another
funnel as the starting population)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy.linalg import expm
from typer.testing import CliRunner

from funnelsim.cli import app
from funnelsim.inference.api import fit_history
from funnelsim.inference.backtest import forecast_entries
from funnelsim.inference.nowcast import nowcast
from tests.conftest import SCENARIOS

runner = CliRunner()
HISTORY = SCENARIOS / "history"
EXAMPLE = [
    str(HISTORY / "events.csv"),
    "--columns", "customer_id=user,timestamp=ts,stage=event",
    "--stage-map", str(HISTORY / "stage_map.yaml"),
]  # fmt: skip
STAGES = ("a", "b", "c", "lost")
#: rates per day (row: from; column: to); b → b is a repeat event
RATES = np.array(
    [
        [0.0, 0.20, 0.0, 0.05],
        [0.05, 0.10, 0.08, 0.04],
        [0.0, 0.0, 0.0, 0.02],
        [0.0, 0.0, 0.0, 0.0],
    ]
)


@pytest.fixture(scope="module")
def fixed_fit(tmp_path_factory: pytest.TempPathFactory):
    """A journey fit of a small log (every exit recorded), its posterior then set to
    known rates and 6 arrivals a day, so the forecast has an exact expectation."""
    folder = tmp_path_factory.mktemp("fixed")
    rng = np.random.default_rng(4)
    rows = []
    for cid in range(300):
        t = rng.uniform(0, 30)
        paths = (["a"], ["a", "b"], ["a", "b", "c"], ["a", "lost"], ["a", "b", "b", "a"])
        for stage in paths[rng.integers(len(paths))]:
            rows.append((cid, pd.Timestamp("2026-01-01") + pd.Timedelta(days=t), stage))
            t += rng.exponential(3.0)
    log = pd.DataFrame(rows, columns=["customer_id", "timestamp", "stage"])
    log = log[log["timestamp"] < pd.Timestamp("2026-02-15")]
    path = folder / "log.csv"
    log.to_csv(path, index=False)
    fit = fit_history(path, funnel=None, seed=1, draws=200, chains=2)
    assert fit.idata.attrs["drop_off"] == "observed"
    post = fit.idata.posterior
    edges = [str(e) for e in post["edge"].values]
    for e, name in enumerate(edges):
        a, b = name.split(" -> ")
        post["rate"].values[..., e] = RATES[STAGES.index(a), STAGES.index(b)]
    post["arrivals"].values[:] = 6.0 / post.sizes["channel"]
    return fit, log


def _exact(rates: np.ndarray, start: np.ndarray, per_day: float, entry: int, horizon: float):
    """Expected entries into each stage over ``horizon`` days: from people in ``start``
    (the matrix-exponential integral of the flux) and from arrivals at ``per_day`` into
    ``entry`` (its double integral, plus the arrivals themselves)."""
    s = len(STAGES)
    q = rates - np.diag(np.diag(rates))
    q = q - np.diag(q.sum(axis=1))
    flux = rates.copy()
    flux[:, -1] = 0.0  # moves into lost are not seen
    big = np.zeros((3 * s, 3 * s))
    big[:s, :s] = q
    big[:s, s : 2 * s] = flux
    big[s : 2 * s, 2 * s :] = np.eye(s)
    e = expm(big * horizon)
    once, twice = e[:s, s : 2 * s], e[:s, 2 * s :]
    known = start @ once
    new = per_day * twice[entry]
    new[entry] += per_day * horizon
    return known, new


def test_the_forecast_is_the_markov_chains_expectation(fixed_fit) -> None:
    fit, _ = fixed_fit
    horizon = 40.0
    out = forecast_entries(fit, horizon, period_days=7.0, draws=400, seed=3)
    last = fit.last_events()
    start = np.zeros(len(STAGES))
    np.add.at(start, last["stage"].map(STAGES.index).to_numpy(), 1.0)
    start[-1] = 0.0  # the lost stay lost
    rates = fit.rate_draws()[0, 0]  # the fit's edges (those the log shows) at RATES
    assert rates[1, 1] > 0 and rates[1, 0] > 0  # a repeat edge and a back edge
    known, new = _exact(rates, start, 6.0, STAGES.index(fit.entry), horizon)
    for cohort, exact in (("known", known), ("new", new)):
        totals = out[cohort].sum(axis=1)  # (draws, stages)
        mean, se = totals.mean(axis=0), totals.std(axis=0) / np.sqrt(len(totals))
        for i in range(len(STAGES) - 1):
            assert abs(mean[i] - exact[i]) < 4 * se[i] + 1e-9, (
                cohort,
                STAGES[i],
                mean[i],
                exact[i],
            )
    assert out["known"].shape == (400, 6, len(STAGES))  # 40 days in 7-day periods


def test_every_exit_recorded_means_every_silent_customer_is_still_there(fixed_fit) -> None:
    fit, log = fixed_fit
    nc = nowcast(fit, seed=1)
    assert set(nc.customers["customer_id"]) == set(log["customer_id"])
    lost = nc.customers["stage"] == "lost"
    assert (nc.customers.loc[~lost, "p_active"] == 1.0).all()
    assert (nc.customers.loc[lost, "p_active"] == 0.0).all()
    occ = nc.occupancy.set_index("stage")["active_mean"]
    assert (
        occ.to_dict()
        == nc.customers[~lost]["stage"].value_counts().reindex(occ.index).fillna(0).to_dict()
    )


@pytest.fixture(scope="module")
def example_backtest(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("bt") / "backtest"
    result = runner.invoke(
        app,
        ["backtest", *EXAMPLE, "--cutoff", "2026-05-15", "-o", str(out), "--seed", "1",
         "--draws", "400", "--chains", "2"],
        terminal_width=80,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return out, result.output


def test_backtest_of_the_shipped_history(example_backtest) -> None:
    out, output = example_backtest
    text = " ".join(output.split())
    assert "Backtest: fitted up to 2026-05-15" in text and "inside their 90% interval" in text
    totals = pd.read_csv(out / "backtest.csv")
    assert list(totals.columns) == [
        "stage", "cohort", "forecast_mean", "forecast_p05", "forecast_p95", "actual",
    ]  # fmt: skip
    assert set(totals["cohort"]) == {"known", "new", "all"}
    # what happened, counted independently from the raw export
    raw = pd.read_csv(HISTORY / "events.csv", parse_dates=["ts"])
    stage_map = yaml.safe_load((HISTORY / "stage_map.yaml").read_text())
    raw["stage"] = raw["event"].map(stage_map)
    raw = raw.dropna(subset=["stage"])
    first = raw.groupby("user")["ts"].transform("min")
    cut = pd.Timestamp("2026-05-15")
    after = raw[raw["ts"] > cut]
    for cohort, mask in (("known", first[after.index] <= cut), ("new", first[after.index] > cut)):
        counts = after[mask].groupby("stage").size()
        got = totals[totals["cohort"] == cohort].set_index("stage")["actual"]
        assert got.to_dict() == counts.reindex(got.index).fillna(0).astype(int).to_dict()
    everyone = totals[totals["cohort"] == "all"].set_index("stage")
    assert (everyone["forecast_p05"] <= everyone["forecast_mean"]).all()
    # new visitors arrive steadily in the example: their forecast holds what happened
    row = everyone.loc["awareness"]
    assert row["forecast_p05"] <= row["actual"] <= row["forecast_p95"]
    periods = pd.read_csv(out / "backtest_periods.csv")
    assert len(periods) == len(totals) * 7  # 45 days in 7-day periods
    assert (out / "backtest.png").stat().st_size > 10_000
    assert (out / "fit.nc").is_file()


def _raw_history() -> pd.DataFrame:
    raw = pd.read_csv(HISTORY / "events.csv", parse_dates=["ts"])
    stage_map = yaml.safe_load((HISTORY / "stage_map.yaml").read_text())
    raw["stage"] = raw["event"].map(stage_map)
    return raw.dropna(subset=["stage"])


def test_a_rolling_backtest_repeats_it_at_several_cutoffs(tmp_path: Path) -> None:
    """``--cutoff`` then ``--every 21 --horizon 28``: cutoffs every three weeks while
    28 days are left; each row is judged on the 28 days after its cutoff (counted
    independently here); one fit per cutoff; the console lists every cutoff."""
    out = tmp_path / "rolling"
    result = runner.invoke(
        app,
        ["backtest", *EXAMPLE, "--cutoff", "2026-04-15", "--every", "21", "--horizon", "28",
         "-o", str(out), "--seed", "1", "--draws", "200", "--chains", "2"],
        terminal_width=80,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    raw = _raw_history()
    cutoffs = ["2026-04-15", "2026-05-06", "2026-05-27"]  # 2026-06-17 has < 28 days left
    four_weeks = pd.Timedelta(days=28)
    assert pd.Timestamp(cutoffs[-1]) + four_weeks <= raw["ts"].max()
    assert raw["ts"].max() < pd.Timestamp("2026-06-17") + four_weeks
    text = " ".join(result.output.split())
    assert "Rolling backtest: 3 cutoffs" in text and all(c in text for c in cutoffs)
    totals = pd.read_csv(out / "backtest.csv")
    assert list(totals.columns[:3]) == ["cutoff", "days", "stage"]
    assert sorted(set(totals["cutoff"])) == cutoffs and set(totals["days"]) == {28.0}
    first = raw.groupby("user")["ts"].transform("min")
    for cut in cutoffs:
        start = pd.Timestamp(cut)
        window = raw[(raw["ts"] > start) & (raw["ts"] <= start + pd.Timedelta(days=28))]
        known = first[window.index] <= start
        mine = totals[totals["cutoff"] == cut]
        for cohort, mask in (("known", known), ("all", known | ~known)):
            counts = window[mask].groupby("stage").size()
            got = mine[mine["cohort"] == cohort].set_index("stage")["actual"]
            assert got.to_dict() == counts.reindex(got.index).fillna(0).astype(int).to_dict()
        assert (out / f"fit-{cut}.nc").is_file()
    periods = pd.read_csv(out / "backtest_periods.csv")
    assert len(periods) == len(totals) * 4  # 28 days in 7-day periods
    assert (out / "backtest.png").stat().st_size > 10_000 and not (out / "fit.nc").exists()
    # the arrivals are steady in the example: their forecast holds what happened
    arrivals = totals[(totals["stage"] == "awareness") & (totals["cohort"] == "all")]
    inside = (arrivals["forecast_p05"] <= arrivals["actual"]) & (
        arrivals["actual"] <= arrivals["forecast_p95"]
    )
    assert inside.sum() >= 2


def test_a_rolling_backtest_refuses_a_bad_cutoff_or_horizon(tmp_path: Path) -> None:
    out = tmp_path / "bt"
    for extra, message in (
        (["--cutoff", "2026-04-15", "--cutoff", "2027-01-01"], "is outside the data"),
        (["--cutoff", "2026-04-15", "--horizon", "3"], "is too short"),
    ):
        result = runner.invoke(app, ["backtest", *EXAMPLE, *extra, "-o", str(out)])
        assert result.exit_code == 2, result.output
        assert message in " ".join(result.output.split())
        assert "Traceback" not in result.output and not out.exists()


def test_a_backtest_of_crm_snapshots(tmp_path: Path) -> None:
    """``--kind snapshots``: fitted on the snapshots up to the cutoff, the forecast of
    where known customers are seen at their later snapshots holds what the snapshots
    show (the same data and model as the snapshot fit's test, so the compile is
    shared); the actual counts are recounted here."""
    from tests.test_fit_snapshots import write_crm_example

    frame, data, funnel = write_crm_example(tmp_path)
    out = tmp_path / "bt"
    result = runner.invoke(
        app,
        ["backtest", str(data), "--kind", "snapshots", "--funnel", str(funnel),
         "--cutoff", "2026-02-10", "--period-days", "14", "--sampler", "pymc",
         "--draws", "500", "--tune", "500", "--chains", "2", "--seed", "4", "-o", str(out)],
        terminal_width=80,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "snapshots in" in text and "new customers are not forecast" in text
    totals = pd.read_csv(out / "backtest.csv").set_index("stage")
    assert set(totals["cohort"]) == {"known"}
    cut = pd.Timestamp("2026-02-10")
    seen = frame[frame["date"] <= cut]["customer_id"].unique()
    later = frame[(frame["date"] > cut) & frame["customer_id"].isin(seen)]
    later = later[later["stage"] != "lost"]  # lost is not a stage of the tables
    counts = later.groupby("stage").size()
    assert totals["actual"].to_dict() == counts.reindex(totals.index).fillna(0).to_dict()
    assert totals["actual"].sum() == len(later) > 300
    inside = (totals["forecast_p05"] <= totals["actual"]) & (
        totals["actual"] <= totals["forecast_p95"]
    )
    assert inside.sum() >= len(totals) - 1, totals
    assert (out / "backtest.png").stat().st_size > 10_000 and (out / "fit.nc").is_file()


def test_a_rolling_backtest_of_crm_snapshots(tmp_path: Path) -> None:
    """Two cutoffs of snapshots, judged on the 42 days after each: one row per cutoff
    and stage (cohort ``known``), the actual counts recounted, a fit per cutoff."""
    from tests.test_fit_snapshots import write_crm_example

    frame, data, funnel = write_crm_example(tmp_path)
    out = tmp_path / "bt"
    result = runner.invoke(
        app,
        ["backtest", str(data), "--kind", "snapshots", "--funnel", str(funnel),
         "--cutoff", "2026-02-01", "--cutoff", "2026-03-01", "--horizon", "42",
         "--period-days", "14", "--sampler", "pymc", "--draws", "500", "--tune", "500",
         "--chains", "2", "--seed", "4", "-o", str(out)],
        terminal_width=80,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "Rolling backtest: 2 cutoffs" in text and "snapshots in" in text
    totals = pd.read_csv(out / "backtest.csv")
    assert set(totals["cohort"]) == {"known"} and set(totals["days"]) == {42.0}
    for cut in ("2026-03-01", "2026-02-01"):
        start = pd.Timestamp(cut)
        seen = frame[frame["date"] <= start]["customer_id"].unique()
        window = frame[(frame["date"] > start) & (frame["date"] <= start + pd.Timedelta(days=42))]
        window = window[window["customer_id"].isin(seen) & (window["stage"] != "lost")]
        got = totals[totals["cutoff"] == cut].set_index("stage")["actual"]
        want = window.groupby("stage").size().reindex(got.index).fillna(0)
        assert got.to_dict() == want.to_dict()
        assert (out / f"fit-{cut}.nc").is_file()


@pytest.mark.parametrize(
    ("cutoff", "message"),
    [
        ("2027-01-01", "is outside the data"),
        ("2026-06-27", "days of data after it"),
        ("2026-03-03", "days of data before it"),
        ("next tuesday", "is not a date"),
    ],
)
def test_a_cutoff_outside_the_data_or_too_close_to_an_end(
    cutoff: str, message: str, tmp_path: Path
) -> None:
    out = tmp_path / "bt"
    result = runner.invoke(app, ["backtest", *EXAMPLE, "--cutoff", cutoff, "-o", str(out)])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())
    assert "Traceback" not in result.output and not out.exists()


def test_a_starting_population_from_a_fit_of_another_funnel(example_backtest, tmp_path: Path):
    out, _ = example_backtest
    fit = out / "fit.nc"
    scenario = tmp_path / "next.yaml"
    body = {
        "name": "next quarter",
        "funnel": "saas",
        "population": {"from_fit": str(fit)},
        "horizon": {"start": "2026-05-15", "periods": 13, "step": "week"},
        "replicates": 20,
    }
    scenario.write_text(yaml.safe_dump(body))
    result = runner.invoke(app, ["run", str(scenario), "-o", str(tmp_path / "o")])
    assert result.exit_code == 2 and "are not the scenario funnel's" in " ".join(
        result.output.split()
    )
    assert not (tmp_path / "o").exists()
    # the fit's own funnel, started where the fit's customers stand, at the end of its data
    body.pop("funnel")
    body["fit"] = str(fit)
    body["horizon"]["start"] = "2026-04-01"
    scenario.write_text(yaml.safe_dump(body))
    result = runner.invoke(app, ["run", str(scenario), "-o", str(tmp_path / "o")])
    assert result.exit_code == 2 and "set `start: 2026-05-15`" in " ".join(result.output.split())
    body["horizon"]["start"] = "2026-05-15"
    scenario.write_text(yaml.safe_dump(body))
    result = runner.invoke(app, ["run", str(scenario), "-o", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    from funnelsim.inference.fitted import FittedFunnel
    from funnelsim.scenario import load_scenario

    loaded = load_scenario(scenario)
    expected = nowcast(FittedFunnel.load(fit), seed=None).occupancy.set_index("stage")
    for stage, n in loaded.population.initial.items():
        assert abs(n - expected.loc[stage, "active_mean"]) <= 0.5 + 4 * (
            expected.loc[stage, "active_p95"] - expected.loc[stage, "active_p05"]
        ) / 3.29 / np.sqrt(200)
    # the counts engine starts each replicate from its own draw of the nowcast
    from funnelsim.inference.forecast import fitted_model

    model = fitted_model(loaded, 200, "counts", seed=3)
    start = model.initial_by_replicate()
    assert start.shape[0] == 200 and np.all(start == np.rint(start))
    by_stage = np.stack([np.bincount(model.stage_of, row, len(model.stages)) for row in start])
    now = loaded._start[1]  # the nowcast the scenario was loaded with: draw r → replicate r
    for stage in expected.index:
        i, j = model.stages.index(stage), now.stages.index(stage)
        np.testing.assert_array_equal(by_stage[:, i], now.occupancy_draws[:200, j])
    assert by_stage.std(axis=0).max() > 1  # who is still there is uncertain


def test_nowcast_of_a_fit_that_keeps_no_customers(fixed_fit, tmp_path: Path) -> None:
    from funnelsim.inference.fitted import FittedFunnel

    fit, _ = fixed_fit
    idata = fit.idata.copy()
    del idata.constant_data  # as a count or snapshot fit has none
    bare = FittedFunnel(idata, stages=fit.stages, goal=fit.goal, kind="snapshots", data=fit.data)
    path = bare.save(tmp_path / "bare.nc")
    out = tmp_path / "customers.csv"
    result = runner.invoke(app, ["nowcast", str(path), "-o", str(out)])
    assert result.exit_code == 2 and "cannot be nowcast customer by customer" in " ".join(
        result.output.split()
    )
    assert not out.exists()
