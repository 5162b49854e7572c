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
    assert names == ["plots/cumulative.png", "plots/dropoff.png", "plots/funnel.png",
                     "plots/occupancy.png", "results.nc", "scenario.resolved.yaml", "summary.csv",
                     "summary_by_channel.csv", "summary_by_segment.csv", "timeseries.csv"]
    summary = pd.read_csv(out / "summary.csv")
    conversions = summary.set_index("metric").loc["conversions"]
    assert conversions["p05"] < conversions["mean"] < conversions["p95"]
    resolved = yaml.safe_load((out / "scenario.resolved.yaml").read_text())
    assert resolved["replicates"] == 40 and resolved["seed"] == 42
    assert resolved["funnelsim_version"] == __version__


def test_same_seed_gives_byte_identical_tables(tmp_path):
    for name in ("a", "b"):
        args = ["run", BIKE, "-o", str(tmp_path / name), "-n", "25", "--seed", "3", "--no-plots", "-q"]
        assert runner.invoke(app, args).exit_code == 0
    for name in ("summary.csv", "timeseries.csv", "scenario.resolved.yaml"):
        assert filecmp.cmp(tmp_path / "a" / name, tmp_path / "b" / name, shallow=False)
    other = ["run", BIKE, "-o", str(tmp_path / "c"), "-n", "25", "--seed", "4", "--no-plots", "-q"]
    assert runner.invoke(app, other).exit_code == 0
    assert not filecmp.cmp(tmp_path / "a" / "summary.csv", tmp_path / "c" / "summary.csv",
                           shallow=False)


def test_expected_engine_from_the_command_line(tmp_path):
    result = runner.invoke(app, ["run", BIKE, "-o", str(tmp_path / "e"), "--engine", "expected",
                                 "--no-plots"])
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


def test_plans_are_compared_at_a_glance(tmp_path):
    out = tmp_path / "holiday"
    result = runner.invoke(app, ["run", str(SCENARIOS / "bike_shop_holiday.yaml"), "-o", str(out),
                                 "-n", "60"])
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
    assert plots == ["cumulative.png", "dropoff.png", "funnel.png", "occupancy.png",
                     "pressure.png", "uplift.png"]
    by_channel = pd.read_csv(out / "summary_by_channel.csv")
    assert {"store", "search", "social", "referral"} <= set(by_channel["channel"])
