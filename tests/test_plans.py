"""Campaign plans: variants, common random numbers, economics, splits by channel and persona."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from funnelsim.scenario import load_scenario, run
from funnelsim.scenario.runner import plans, stage_values
from funnelsim.scenario.schema import Scenario

from .conftest import SCENARIOS

BASE = """\
name: plan test
horizon: {start: 2026-11-01, periods: 60}
funnel:
  goal: conversion
  stages:
    awareness:  {dwell_days: 14, next: {interest: 0.35, lost: 0.65}}
    interest:   {dwell_days: 10, next: {desire: 0.40, awareness: 0.20, lost: 0.40}}
    desire:     {dwell_days: 7,  next: {conversion: 0.30, interest: 0.30, lost: 0.40}}
    conversion: {dwell_days: 2,  next: {advocacy: 0.30, lost: 0.70}}
    advocacy:   {dwell_days: 60, next: {conversion: 0.1, lost: 0.9}}
population: {initial: {awareness: 3000}}
arrivals: {per_day: 200, channels: {social: 0.8, store: 0.2}}
economics: {value_per_conversion: 100}
replicates: 200
seed: 5
"""


def scenario(tmp_path, extra: str = "", economics: str = "") -> Scenario:
    path = tmp_path / "s.yaml"
    base = BASE.replace("economics: {value_per_conversion: 100}", economics) if economics else BASE
    path.write_text(base + extra)
    return load_scenario(path)


def arrays(result, name):
    ds = result.dataset.sel(scenario=name)
    return [ds[v].values for v in ("occupancy", "flows", "arrivals", "entries")]


def test_a_campaign_without_effect_changes_nothing(tmp_path):
    s = scenario(
        tmp_path,
        """
baseline:
  campaigns:
    neutral: {effects: [{edge: desire -> conversion, lift: 1.0}, {arrivals: social, lift: 1}]}
variants:
  no_spend:
    campaigns:
      ads:
        spend: {per_day: 0}
        half_saturation: 50
        effects: [{edge: interest -> desire, lift: 3.0}]
  none:
    campaigns: {neutral: null}
""",
    )
    result = run(s)
    for name in ("no_spend", "none"):
        for a, b in zip(arrays(result, "baseline"), arrays(result, name)):
            assert np.array_equal(a, b)
    assert (result.uplift()["uplift_conversions"] == 0).all()


def test_variants_patch_the_baseline(tmp_path):
    s = scenario(
        tmp_path,
        """
baseline:
  campaigns:
    sale: {start: 2026-12-01, end: 2026-12-20, effects: [{edge: desire -> conversion, lift: 2}]}
    ads: {effects: [{arrivals: social, lift: 1.5}], cost_per_day: 10}
variants:
  longer_sale: {campaigns: {sale: {end: 2026-12-30}}}
  no_ads: {label: without ads, campaigns: {ads: null}}
  more_people: {arrivals: {per_day: 300}}
""",
    )
    p = plans(s)
    assert list(p) == ["baseline", "longer_sale", "no_ads", "more_people"]
    sale = p["longer_sale"].baseline.campaigns["sale"]
    assert str(sale.end) == "2026-12-30" and str(sale.start) == "2026-12-01"
    assert sale.effects[0].lift == 2
    assert list(p["no_ads"].baseline.campaigns) == ["sale"]
    assert p["no_ads"].baseline.label == "without ads"
    assert p["more_people"].arrivals.per_day == 300
    assert p["more_people"].arrivals.channels == {"social": 0.8, "store": 0.2}
    result = run(s, replicates=50)
    assert list(result.dataset["label"].values) == [
        "baseline",
        "longer_sale",
        "without ads",
        "more_people",
    ]
    spend = result.totals()["spend"].isel(replicate=0)
    assert spend.sel(scenario="baseline") == pytest.approx(600.0)  # 60 days × 10
    assert spend.sel(scenario="no_ads") == 0.0


def test_more_spend_never_lowers_expected_conversions_on_the_examples(tmp_path):
    """Property over spend levels: scale every campaign's spend on the shipped examples
    (a spend CSV is scaled into a copy)."""
    checked = 0
    for path in sorted(SCENARIOS.glob("*.yaml")):
        base = load_scenario(path)
        for name, plan in plans(base).items():
            spenders = [c for c, spec in plan.baseline.campaigns.items() if spec.spend]
            for campaign in spenders:
                conversions = []
                for factor in (0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 16.0):
                    raw = plan.model_dump(mode="json")
                    spend = raw["baseline"]["campaigns"][campaign]["spend"]
                    for key in ("total", "per_day"):
                        if spend.get(key) is not None:
                            spend[key] *= factor
                    if spend.get("csv") is not None:
                        column = spend.get("column") or campaign
                        table = pd.read_csv(path.parent / spend["csv"])
                        table[column] *= factor
                        spend["csv"] = str(tmp_path / f"{path.stem}-{campaign}-{factor}.csv")
                        table.to_csv(spend["csv"], index=False)
                    scaled = Scenario.model_validate(raw)
                    result = run(scaled, engine="expected")
                    conversions.append(float(result.conversions().sum()))
                assert np.all(np.diff(conversions) >= -1e-9 * conversions[-1]), (path.name, name)
                assert conversions[-1] > conversions[0]
                checked += 1
    assert checked >= 3


def test_common_random_numbers_narrow_the_uplift_interval():
    s = load_scenario(SCENARIOS / "bike_shop_holiday.yaml")
    widths = {}
    for crn in (True, False):
        result = run(s, replicates=200, common_random_numbers=crn)
        q = result.uplift()["uplift_conversions"].quantile([0.05, 0.95], dim="replicate")
        widths[crn] = (q.sel(quantile=0.95) - q.sel(quantile=0.05)).values
        assert result.dataset.attrs["common_random_numbers"] == int(crn)
    print("5–95% width of uplift in conversions, CRN vs independent:", widths[True], widths[False])
    # paired streams narrow every variant's interval, by half on average
    ratio = widths[True] / widths[False]
    assert np.all(ratio < 0.65) and ratio.mean() < 0.5


def test_channels_are_carried_to_conversion(tmp_path):
    """Arrivals split 80/20 with identical journeys: 80% of sales come from social."""
    result = run(scenario(tmp_path), replicates=300)
    by = result.conversions(by="channel").sel(scenario="baseline")
    share = by.sel(channel="social") / (by.sel(channel="social") + by.sel(channel="store"))
    se = float(share.std()) / np.sqrt(300)
    assert abs(float(share.mean()) - 0.8) < 4.5 * se
    assert np.array_equal(by.sum("channel").values, result.conversions().sel(scenario="baseline"))
    table = result.summary_by("channel")
    assert list(table.columns) == ["scenario", "channel", "metric", "mean", "p05", "p50", "p95"]
    assert set(table["channel"]) == {"social", "store", "existing"}


def test_personas_have_their_own_rates(tmp_path):
    s = scenario(
        tmp_path,
        """
segments:
  keen: {share: 0.5}
  hesitant:
    share: 0.5
    stages:
      desire: {dwell_days: 7, next: {conversion: 0.05, interest: 0.30, lost: 0.65}}
""",
    )
    result = run(s, engine="expected")
    by = result.conversions(by="segment").isel(scenario=0, replicate=0)
    assert float(by.sel(segment="keen")) > 3 * float(by.sel(segment="hesitant"))
    arrivals = result.dataset["arrivals"].sum(("period", "channel")).isel(scenario=0, replicate=0)
    assert float(arrivals.sel(segment="keen")) == pytest.approx(
        float(arrivals.sel(segment="hesitant"))
    )
    assert set(result.summary_by("segment")["segment"]) == {"keen", "hesitant"}


def test_economics_and_comparison_metrics(tmp_path):
    s = scenario(
        tmp_path,
        economics="economics: {value_per_conversion: 100, value_per_entry: {advocacy: 5}}",
        extra="""
baseline: {campaigns: {}}
variants:
  sale:
    campaigns:
      sale: {effects: [{edge: desire -> conversion, lift: 2}], cost_per_day: 20, fixed_cost: 100}
""",
    )
    assert stage_values(s) == {"conversion": 100.0, "advocacy": 5.0}
    result = run(s, replicates=100)
    totals = result.totals()
    entries = result.entries().sum("period")
    revenue = 100 * entries.sel(stage="conversion") + 5 * entries.sel(stage="advocacy")
    assert np.allclose(totals["revenue"], revenue)
    # repeat purchases (advocacy → conversion) count as conversions again
    assert float(result.dataset["flows"].sel(source="advocacy", target="conversion").sum()) > 0
    sale = totals.sel(scenario="sale")
    assert np.all(sale["spend"] == 60 * 20 + 100)
    assert np.allclose(sale["profit"], sale["revenue"] - sale["spend"])
    assert np.allclose(sale["cac"], sale["spend"] / sale["conversions"])
    assert np.allclose(sale["roi"], sale["profit"] / sale["spend"])
    table = result.summary().set_index(["scenario", "metric"])
    up = result.uplift().sel(scenario="sale")
    assert table.loc[("sale", "uplift_conversions"), "mean"] == pytest.approx(
        float(up["uplift_conversions"].mean())
    )
    conv = result.conversions()
    beats = float((conv.sel(scenario="sale") > conv.sel(scenario="baseline")).mean())
    assert table.loc[("sale", "prob_beats_baseline"), "mean"] == pytest.approx(beats)
    assert np.isnan(table.loc[("sale", "prob_beats_baseline"), "p05"])
    best = table.xs("prob_best_profit", level="metric")["mean"]
    assert best.sum() == pytest.approx(1.0)
    assert {"revenue", "spend", "cac", "roi", "profit", "incremental_roi", "uplift_profit"} <= set(
        table.index.get_level_values("metric")
    )


def test_resolved_file_of_a_plan_runs_again(tmp_path):
    s = load_scenario(SCENARIOS / "bike_shop_holiday.yaml")
    result = run(s, replicates=5)
    from funnelsim.scenario import resolved_scenario

    path = tmp_path / "again.yaml"
    data = resolved_scenario(s, result)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    again = run(load_scenario(path))
    assert np.array_equal(again.dataset["entries"].values, result.dataset["entries"].values)
