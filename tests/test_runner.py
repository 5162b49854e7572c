"""Scenario files end to end: load, run, label, write atomically, reproduce."""

from __future__ import annotations

import filecmp

import numpy as np
import pytest
import yaml
from numpy.testing import assert_allclose

from funnelsim.results import SimulationResult
from funnelsim.scenario import (
    compile_scenario,
    load_scenario,
    resolved_scenario,
    run,
    write_outputs,
)

from .conftest import SCENARIOS

MINIMAL = """\
name: Bike shop baseline
horizon: {start: 2026-11-01, periods: 90, step: day}
funnel:
  goal: conversion
  stages:
    awareness:  {dwell_days: 14, next: {interest: 0.35, lost: 0.65}}
    interest:   {dwell_days: 10, next: {desire: 0.40, awareness: 0.20, lost: 0.40}}
    desire:     {dwell_days: 7,  next: {conversion: 0.30, interest: 0.30, lost: 0.40}}
    conversion: {dwell_days: 2,  next: {advocacy: 0.30, lost: 0.70}}
    advocacy:   {dwell_days: 60, next: {lost: 1.0}}
population: {initial: {awareness: 5000}}
arrivals: {per_day: 300, stage: awareness, channels: {social: 0.6, search: 0.3, store: 0.1}}
replicates: 500
seed: 42
"""


@pytest.fixture
def minimal(tmp_path):
    path = tmp_path / "minimal.yaml"
    path.write_text(MINIMAL)
    return path


def test_the_issue_minimal_file_works_as_written(minimal):
    scenario = load_scenario(minimal)
    result = run(scenario, replicates=50)
    ds = result.dataset
    assert ds["occupancy"].dims == ("scenario", "replicate", "period", "stage")
    assert ds["flows"].dims == ("scenario", "replicate", "period", "source", "target")
    assert ds.sizes["period"] == 90 and ds.sizes["replicate"] == 50
    # arrival channels, plus the people already there at the start
    assert list(ds["channel"].values) == ["social", "search", "store", "existing"]
    assert str(ds["period"].values[0])[:10] == "2026-11-01"
    assert ds.attrs["seed"] == 42


def test_conversions_are_flows_into_the_goal(minimal):
    result = run(load_scenario(minimal), replicates=20)
    flows = result.dataset["flows"].sel(target="conversion").sum(("source", "period"))
    assert np.array_equal(result.conversions().values, flows.values)
    entries = result.entries().sel(stage="conversion").sum("period")
    assert np.array_equal(entries.values, flows.values)
    # entries into the entry stage include arrivals
    into_awareness = result.entries().sel(stage="awareness").sum("period")
    arrivals = result.dataset["arrivals"].sum(("period", "channel"))
    assert np.all(into_awareness >= arrivals)


def test_summary_table_has_the_promised_shape(minimal):
    result = run(load_scenario(minimal), replicates=40)
    table = result.summary()
    assert list(table.columns) == ["scenario", "metric", "mean", "p05", "p50", "p95"]
    assert {"conversions", "arrivals"} <= set(table["metric"])
    conv = table.set_index("metric").loc["conversions"]
    values = result.conversions().values.ravel()
    assert conv["mean"] == pytest.approx(values.mean())
    assert conv["p05"] <= conv["p50"] <= conv["p95"]
    assert conv["p95"] == pytest.approx(np.quantile(values, 0.95))


def test_lost_is_leaving_before_converting_and_churned_is_customers_leaving(minimal):
    """Drop-off from awareness, interest and desire is `lost`; from the goal stage
    (conversion) and after it (advocacy) it is `churned`; together they are every move
    into `lost`, replicate by replicate."""
    result = run(load_scenario(minimal), replicates=20)
    assert result.before_goal() == ["awareness", "interest", "desire"]
    into_lost = result.dataset["flows"].sel(target="lost").sum("period")
    totals = result.totals()
    before = into_lost.sel(source=["awareness", "interest", "desire"]).sum("source")
    after = into_lost.sel(source=["conversion", "advocacy"]).sum("source")
    assert np.array_equal(totals["lost"].values, before.values)
    assert np.array_equal(totals["churned"].values, after.values)
    assert np.all(totals["churned"] > 0) and np.all(totals["churned"] < totals["conversions"])
    assert {"lost", "churned"} <= set(result.summary()["metric"])


def test_timeseries_table_columns(minimal):
    table = run(load_scenario(minimal), replicates=10).timeseries()
    assert list(table.columns) == [
        "scenario",
        "period",
        "stage",
        "occupancy_mean",
        "occupancy_p05",
        "occupancy_p50",
        "occupancy_p95",
        "entries_mean",
        "entries_p05",
        "entries_p50",
        "entries_p95",
    ]
    assert len(table) == 90 * 6
    assert table["period"].iloc[0] == "2026-11-01"


def test_expected_engine_equals_count_mean_scale(minimal):
    scenario = load_scenario(minimal)
    counts = run(scenario, replicates=400)
    expected = run(scenario, engine="expected")
    c = counts.conversions().values.ravel()
    e = float(expected.conversions().values.ravel()[0])
    assert abs(c.mean() - e) < 4.5 * c.std(ddof=1) / np.sqrt(len(c))


def test_outputs_are_written_and_reproducible(minimal, tmp_path):
    scenario = load_scenario(minimal)
    folders = []
    for k in range(2):
        result = run(scenario, replicates=30)
        folders.append(
            write_outputs(
                result, tmp_path / f"out{k}", resolved_scenario(scenario, result), plots=(k == 0)
            )
        )
    a, b = folders
    for name in ("summary.csv", "timeseries.csv", "scenario.resolved.yaml"):
        assert filecmp.cmp(a / name, b / name, shallow=False), name
    assert (a / "plots" / "funnel.png").stat().st_size > 10_000
    assert (a / "plots" / "occupancy.png").stat().st_size > 10_000
    back = SimulationResult.from_netcdf(a / "results.nc")
    assert np.array_equal(back.dataset["flows"].values, result.dataset["flows"].values)
    assert back.goal == "conversion"
    assert not list(tmp_path.glob(".out*"))  # no temporary folders left behind


def test_resolved_scenario_reproduces_the_run(minimal, tmp_path):
    scenario = load_scenario(minimal)
    first = run(scenario.model_copy(update={"seed": None}), replicates=8)
    resolved = resolved_scenario(scenario, first)
    assert resolved["seed"] == first.dataset.attrs["seed"]
    assert resolved["horizon"]["dt_days"] == 0.2  # λ·dt ≤ 0.1 for the 2-day conversion stage
    again_path = tmp_path / "again.yaml"
    again_path.write_text(
        yaml.safe_dump(
            {k: v for k, v in resolved.items() if k != "funnelsim_version"}, sort_keys=False
        )
    )
    again = run(load_scenario(again_path))
    assert np.array_equal(again.dataset["occupancy"].values, first.dataset["occupancy"].values)


def test_existing_output_folder_is_replaced_whole_or_not_at_all(minimal, tmp_path, monkeypatch):
    out = tmp_path / "out"
    earlier = run(load_scenario(minimal), replicates=3)
    write_outputs(earlier, out, plots=False)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    result = run(load_scenario(minimal), replicates=5)

    def boom(self, path):
        raise OSError("disk full")

    monkeypatch.setattr(SimulationResult, "to_netcdf", boom)
    with pytest.raises(OSError):
        write_outputs(result, out, plots=False)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["minimal.yaml", "out"]
    monkeypatch.undo()
    write_outputs(result, out, plots=False)
    assert sorted(p.name for p in out.iterdir()) == [
        ".funnelsim.json",
        "report.html",
        "results.nc",
        "summary.csv",
        "summary_by_channel.csv",
        "summary_by_segment.csv",
        "timeseries.csv",
    ]


def test_funnel_may_be_a_preset_or_a_file(tmp_path):
    (tmp_path / "journey.yaml").write_text(
        "goal: b\nstages:\n  a: {dwell_days: 2, next: {b: 0.5, lost: 0.5}}\n"
        "  b: {rates: {lost: 0.1}}\n"
    )
    (tmp_path / "s1.yaml").write_text(
        "horizon: {start: 2026-01-05, periods: 8, step: week}\nfunnel: journey.yaml\n"
        "population: {initial: {a: 100}}\nseed: 1\nreplicates: 3\n"
    )
    (tmp_path / "s2.yaml").write_text(
        "horizon: {start: 2026-01-05, periods: 8}\nfunnel: web\narrivals: {per_day: 10}\nseed: 1\n"
    )
    one = run(load_scenario(tmp_path / "s1.yaml"))
    assert one.stages == ["a", "b", "lost"] and one.dataset.sizes["period"] == 8
    assert str(one.dataset["period"].values[1])[:10] == "2026-01-12"  # weekly periods
    two = load_scenario(tmp_path / "s2.yaml")
    assert two.funnel.goal == "purchase"
    assert compile_scenario(two).funnel.entry == "awareness"


def test_weekly_horizon_totals_match_daily(minimal, tmp_path):
    daily = load_scenario(minimal)
    weekly = daily.model_copy(
        update={"horizon": daily.horizon.model_copy(update={"step": "week", "periods": 12})}
    )
    d = run(
        daily.model_copy(update={"horizon": daily.horizon.model_copy(update={"periods": 84})}),
        engine="expected",
    )
    w = run(weekly, engine="expected")
    assert_allclose(w.conversions().values, d.conversions().values, rtol=1e-12)
    assert_allclose(
        w.dataset["occupancy"].values[0, 0, -1], d.dataset["occupancy"].values[0, 0, -1], rtol=1e-12
    )


@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_scenarios_validate_and_run(path):
    scenario = load_scenario(path)
    result = run(scenario, replicates=5)
    assert float(result.conversions().mean()) > 0
