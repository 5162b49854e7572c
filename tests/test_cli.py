"""The command line as a planner uses it (bad input is in test_bad_input.py)."""

from __future__ import annotations

import filecmp
import json

import pandas as pd
import yaml
from typer.testing import CliRunner

from funnelsim import __version__
from funnelsim.cli import app

from .conftest import SCENARIOS

runner = CliRunner()
BIKE = str(SCENARIOS / "bike_shop.yaml")


def test_run_writes_every_output_and_prints_a_table(tmp_path):
    out = tmp_path / "forecast"
    result = runner.invoke(app, ["run", BIKE, "-o", str(out), "--replicates", "40"])
    assert result.exit_code == 0, result.output
    assert "conversions" in result.output and "5–95% range" in result.output
    names = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert names == [
        ".funnelsim.json",
        "plots/cumulative.png",
        "plots/dropoff.png",
        "plots/funnel.png",
        "plots/occupancy.png",
        "report.html",
        "results.nc",
        "scenario.resolved.yaml",
        "summary.csv",
        "summary_by_channel.csv",
        "summary_by_segment.csv",
        "timeseries.csv",
    ]
    summary = pd.read_csv(out / "summary.csv")
    conversions = summary.set_index("metric").loc["conversions"]
    assert conversions["p05"] < conversions["mean"] < conversions["p95"]
    text = (out / "scenario.resolved.yaml").read_text()
    resolved = yaml.safe_load(text)
    assert resolved["replicates"] == 40 and resolved["seed"] == 42
    assert text.startswith(f"# funnelsim {__version__}:")


def test_same_seed_gives_byte_identical_tables(tmp_path):
    for name in ("a", "b"):
        args = [
            "run",
            BIKE,
            "-o",
            str(tmp_path / name),
            "-n",
            "25",
            "--seed",
            "3",
            "--no-plots",
            "-q",
        ]
        assert runner.invoke(app, args).exit_code == 0
    for name in ("summary.csv", "timeseries.csv", "scenario.resolved.yaml"):
        assert filecmp.cmp(tmp_path / "a" / name, tmp_path / "b" / name, shallow=False)
    other = ["run", BIKE, "-o", str(tmp_path / "c"), "-n", "25", "--seed", "4", "--no-plots", "-q"]
    assert runner.invoke(app, other).exit_code == 0
    assert not filecmp.cmp(
        tmp_path / "a" / "summary.csv", tmp_path / "c" / "summary.csv", shallow=False
    )


def test_expected_engine_from_the_command_line(tmp_path):
    result = runner.invoke(
        app, ["run", BIKE, "-o", str(tmp_path / "e"), "--engine", "expected", "--no-plots"]
    )
    assert result.exit_code == 0, result.output
    summary = pd.read_csv(tmp_path / "e" / "summary.csv").set_index("metric")
    row = summary.loc["conversions"]
    assert row["p05"] == row["mean"] == row["p95"]  # deterministic


def test_default_output_folder_is_out_slash_stem(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert runner.invoke(app, ["run", BIKE, "-n", "3", "-q", "--no-plots"]).exit_code == 0
    assert (tmp_path / "out" / "bike_shop" / "summary.csv").is_file()


def test_validate_presets_schema_and_version():
    ok = runner.invoke(app, ["validate", BIKE])
    assert ok.exit_code == 0 and "is valid" in ok.output
    listing = runner.invoke(app, ["presets"])
    assert listing.exit_code == 0
    for name in ("bike_shop", "saas", "web"):
        assert name in listing.output
    shown = runner.invoke(app, ["presets", "saas"])
    assert yaml.safe_load(shown.output)["goal"] == "decision"
    assert runner.invoke(app, ["presets", "sass"]).exit_code == 2
    schema = json.loads(runner.invoke(app, ["schema"]).output)
    assert schema["additionalProperties"] is False
    assert {"horizon", "funnel", "arrivals", "population"} <= set(schema["properties"])
    assert any(o.get("type") == "string" for o in schema["properties"]["funnel"]["anyOf"])
    assert __version__ in runner.invoke(app, ["--version"]).output


def test_python_dash_m_runs_the_same_command_line():
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "funnelsim", "--version"], capture_output=True, text=True
    )
    assert done.returncode == 0 and __version__ in done.stdout


def test_plans_are_compared_at_a_glance(tmp_path):
    out = tmp_path / "holiday"
    result = runner.invoke(
        app, ["run", str(SCENARIOS / "bike_shop_holiday.yaml"), "-o", str(out), "-n", "60"]
    )
    assert result.exit_code == 0, result.output
    text = result.stdout
    for name in ("baseline", "instagram", "holiday_sale", "full_plan", "Δ sales", "P(best)"):
        assert name in text
    assert "the most profitable plan: the best in" in text
    summary = pd.read_csv(out / "summary.csv")
    best = summary[summary.metric == "prob_best_profit"].set_index("scenario")["mean"]
    winner = best.idxmax()
    assert f"{winner} is" in text
    assert best.sum() == 1.0
    plots = sorted(p.name for p in (out / "plots").iterdir())
    assert plots == [
        "cumulative.png",
        "dropoff.png",
        "funnel.png",
        "occupancy.png",
        "pressure.png",
        "uplift.png",
    ]
    report = (out / "report.html").read_text()
    assert report.count("data:image/png;base64,") == 6  # every plot inlined: readable offline
    assert "http" not in report and "<script" not in report
    assert all(name in report for name in ("instagram", "holiday_sale", "full_plan"))
    assert "<tr class='best'><td class='text'><b>" in report
    assert report.split("<tr class='best'>")[1].split("</td>")[0].endswith(f"<br>{winner}")
    by_channel = pd.read_csv(out / "summary_by_channel.csv")
    assert {"store", "search", "social", "referral"} <= set(by_channel["channel"])


def test_simulate_writes_journeys_identically_for_any_number_of_workers(tmp_path):
    files = []
    for workers in (1, 2):
        path = tmp_path / f"journeys_{workers}.csv"
        args = [
            "simulate",
            BIKE,
            "--journeys",
            str(path),
            "-n",
            "3",
            "--seed",
            "9",
            "--workers",
            str(workers),
            "-q",
        ]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        files.append(path)
    assert filecmp.cmp(*files, shallow=False)
    log = pd.read_csv(files[0], parse_dates=["timestamp"])
    assert list(log.columns) == [
        "replicate",
        "customer_id",
        "timestamp",
        "stage",
        "segment",
        "channel",
    ]
    assert sorted(log["replicate"].unique()) == [0, 1, 2]
    assert "lost" not in set(log["stage"])  # real logs are silent about drop-off
    assert log["timestamp"].min() == pd.Timestamp("2026-11-01")
    assert log["timestamp"].max() < pd.Timestamp("2027-01-30")
    # one row per stage entry: every customer's first row is where they started
    first = (
        log.sort_values("timestamp", kind="stable").groupby(["replicate", "customer_id"]).first()
    )
    assert set(first["stage"]) == {"awareness"}


def test_simulate_parquet_a_variant_and_drop_off(tmp_path):
    path = tmp_path / "holiday.parquet"
    args = [
        "simulate",
        str(SCENARIOS / "bike_shop_holiday.yaml"),
        "-j",
        str(path),
        "--variant",
        "holiday_sale",
        "--record-lost",
        "-q",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    log = pd.read_parquet(path)
    assert "replicate" not in log.columns
    assert "lost" in set(log["stage"])
    assert {"commuters", "weekend_riders"} == set(log["segment"])
    assert "referral" in set(log["channel"]) or log["channel"].nunique() >= 4
    bad = runner.invoke(app, ["simulate", BIKE, "-j", str(tmp_path / "x.xlsx")])
    assert bad.exit_code == 2 and "must end in .csv or .parquet" in bad.stderr
    unknown = runner.invoke(
        app, ["simulate", BIKE, "-j", str(tmp_path / "x.csv"), "--variant", "sale"]
    )
    assert unknown.exit_code == 2 and "unknown plan 'sale'" in unknown.stderr
    assert not (tmp_path / "x.csv").exists()


def test_agents_engine_run_reports_queues(tmp_path):
    out = tmp_path / "sales"
    result = runner.invoke(
        app, ["run", str(SCENARIOS / "sales_team.yaml"), "-o", str(out), "-n", "6", "--no-plots"]
    )
    assert result.exit_code == 0, result.output
    assert "lead queue (baseline): waited" in result.stdout
    queues = pd.read_csv(out / "summary_queues.csv")
    assert set(queues["metric"]) == {
        "served",
        "lost_waiting",
        "wait_mean",
        "wait_p50",
        "wait_p90",
        "utilisation",
    }
    util = queues.query("metric == 'utilisation'")["mean"]
    assert ((util > 0) & (util < 1)).all()


def test_progress_counts_replicates_per_plan_and_the_table_has_point_values(tmp_path):
    args = ["run", str(SCENARIOS / "bike_shop_holiday.yaml"), "-o", str(tmp_path / "e")]
    result = runner.invoke(app, [*args, "--engine", "expected", "--no-plots"])
    assert result.exit_code == 0, result.output
    assert "4/4 plans" in result.stderr and "plan 4/4 full_plan" in result.stderr
    assert result.stderr.count("1/1 replicates") == 4  # one deterministic replicate each
    assert "P(best)" not in result.stdout and "–" not in result.stdout  # no ranges
    assert "the most profitable plan (deterministic expected values" in " ".join(
        result.stdout.split()
    )
