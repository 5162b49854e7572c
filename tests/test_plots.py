"""Plots are drawn headless, onto the Axes they are given, from the result alone, and
say what a planner would otherwise misread: which plan, which date, which ratio."""

from __future__ import annotations

import logging
import re
import warnings

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib import font_manager  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from funnelsim.report import plots  # noqa: E402
from funnelsim.report.plots import (  # noqa: E402
    dropoff_figure,
    font_families,
    occupancy_figure,
    plot_cumulative_conversions,
    plot_dropoff,
    plot_funnel,
    plot_occupancy,
    plot_pressure,
    plot_uplift,
    pressure_figure,
    save_standard_plots,
)
from funnelsim.scenario import load_scenario, run  # noqa: E402

from .conftest import SCENARIOS  # noqa: E402


@pytest.fixture(scope="module")
def result():
    return run(load_scenario(SCENARIOS / "bike_shop.yaml"), replicates=20)


@pytest.fixture(scope="module")
def plans_result():
    return run(load_scenario(SCENARIOS / "bike_shop_holiday.yaml"), replicates=30)


def _texts(ax) -> list[str]:
    return [t.get_text() for t in ax.texts]


def _tick_labels(fig: Figure, ax) -> list[str]:
    FigureCanvasAgg(fig).draw()
    return [t.get_text() for t in ax.get_xticklabels()]


def test_funnel_bars_are_people_entering_each_stage(result):
    ax = Figure().subplots()
    assert plot_funnel(result, ax=ax) is ax
    widths = [bar.get_width() for bar in ax.patches]
    assert len(widths) == 5  # lost is not a funnel bar; no repeat events here
    entries = result.entries().sum("period").mean("replicate").sel(scenario="baseline")
    initial = result.dataset["initial"].mean("replicate").sel(scenario="baseline")
    assert widths == pytest.approx(list((entries + initial).values[:5]))
    assert widths[3] == pytest.approx(float(result.conversions().mean()))


def test_funnel_ratios_follow_existing_edges_and_never_exceed_100_percent(result):
    ax = plot_funnel(result, ax=Figure().subplots())
    texts = _texts(ax)
    flows = result.dataset["flows"].sum("period").mean("replicate").sel(scenario="baseline")
    out_of_desire = float(flows.sel(source="desire").sum())  # desire has no repeat events
    to_conversion = float(flows.sel(source="desire", target="conversion"))
    assert f"{to_conversion / out_of_desire:.0%} of those leaving desire" in texts[3]
    # interest is entered from awareness and, going back, from desire: both edges exist
    assert "of those leaving awareness" in texts[1] and "of those leaving desire" in texts[1]
    assert "new arrivals" in texts[0] and "at the start" in texts[0]
    shares = [int(p) for text in texts for p in re.findall(r"(\d+)% of", text)]
    assert shares and all(0 <= p <= 100 for p in shares)
    assert "of advocacy" not in " ".join(texts)  # no edge into conversion from advocacy


def test_funnel_draws_every_plan_or_names_the_one_drawn(plans_result):
    ax = plot_funnel(plans_result, ax=Figure().subplots())
    assert len(ax.patches) == 5 * 4
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == plans_result.scenarios
    one = plot_funnel(plans_result, scenario="full_plan", ax=Figure().subplots())
    assert len(one.patches) == 5 and "plan full_plan" in one.get_title()


def test_funnel_shows_repeat_events_apart():
    retention = run(load_scenario(SCENARIOS / "retention.yaml"), replicates=5)
    ax = plot_funnel(retention, scenario="baseline", ax=Figure().subplots())
    stages = [s for s in retention.stages if s != "lost"]
    k = stages.index("purchase")
    moved_in, repeats = ax.patches[k], ax.patches[len(stages) + k]
    conversions = float(retention.conversions().sel(scenario="baseline").mean())
    there = float(retention.dataset["initial"].sel(scenario="baseline", stage="purchase").mean())
    repeat_events = retention.dataset["flows"].sel(
        scenario="baseline", source="purchase", target="purchase"
    )
    assert repeats.get_x() == pytest.approx(moved_in.get_width())  # stacked
    assert repeats.get_width() == pytest.approx(float(repeat_events.sum("period").mean()))
    assert moved_in.get_width() + repeats.get_width() == pytest.approx(there + conversions)
    assert "repeats" in _texts(ax)[k]


def test_occupancy_fan_runs_from_the_start_to_the_end_of_the_last_period(result):
    ax = Figure().subplots()
    assert plot_occupancy(result, "interest", scenario="baseline", ax=ax) is ax
    x, median = ax.lines[0].get_xdata(), ax.lines[0].get_ydata()
    expected = result.dataset["occupancy"].sel(stage="interest").median("replicate").values[0]
    start = result.dataset["initial"].sel(stage="interest").median("replicate").values[0]
    assert np.allclose(median, np.r_[start, expected])
    assert x[0] == np.datetime64("2026-11-01") and x[-1] == np.datetime64("2027-01-30")
    assert len(ax.collections) == 2  # 5–95% and 25–75% bands


def test_occupancy_figure_draws_every_plan(plans_result, result):
    fig = occupancy_figure(plans_result)
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert len(panels) == len(plans_result.stages)
    assert all(len(ax.lines) == len(plans_result.scenarios) for ax in panels)
    assert "— plan" not in fig.get_suptitle()  # every plan is drawn, with a legend
    assert [t.get_text() for t in fig.legends[0].get_texts()] == plans_result.scenarios
    one = occupancy_figure(plans_result, scenario="instagram")
    assert "plan instagram" in one.get_suptitle()
    single = occupancy_figure(result)
    assert sum(ax.get_visible() for ax in single.axes) == len(result.stages)


def test_cumulative_conversions_start_at_zero_and_end_at_the_horizon(plans_result):
    fig = Figure()
    ax = plot_cumulative_conversions(plans_result, ax=fig.subplots())
    assert [line.get_label() for line in ax.lines] == plans_result.scenarios
    last = [line.get_ydata()[-1] for line in ax.lines]
    assert np.allclose(last, plans_result.conversions().median("replicate").values)
    x = ax.lines[0].get_xdata()
    assert ax.lines[0].get_ydata()[0] == 0 and x[0] == np.datetime64("2026-11-01")
    assert x[-1] == np.datetime64("2026-11-01") + np.timedelta64(13 * 7, "D")  # 13 weeks
    labels = [t for t in _tick_labels(fig, ax) if t]
    assert labels == ["Nov 2026", "Dec 2026", "Jan 2027"]


def test_uplift_histograms_are_paired_differences(plans_result):
    ax = plot_uplift(plans_result, ax=Figure().subplots())
    counts = {}
    for patch in ax.patches:
        counts[patch.get_facecolor()] = counts.get(patch.get_facecolor(), 0) + patch.get_height()
    assert sorted(counts.values()) == [30, 30, 30]  # every replicate of every variant
    means = [line.get_xdata()[0] for line in ax.lines[:-1]]
    assert np.allclose(means, plans_result.uplift()["uplift_conversions"].mean("replicate"))


def test_dropoff_separates_leaving_before_converting_from_customers_leaving(plans_result):
    totals = plans_result.totals().mean("replicate")
    before = plot_dropoff(plans_result, "before", ax=Figure().subplots())
    after = plot_dropoff(plans_result, "after", ax=Figure().subplots())
    n = len(plans_result.scenarios)
    assert len(before.patches) == 3 * n and len(after.patches) == 2 * n
    assert sum(p.get_height() for p in before.patches) == pytest.approx(float(totals["lost"].sum()))
    assert sum(p.get_height() for p in after.patches) == pytest.approx(
        float(totals["churned"].sum())
    )
    assert [t.get_text() for t in after.get_xticklabels()] == ["conversion", "advocacy"]
    fig = dropoff_figure(plans_result)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["Left before converting (lost)", "Customers leaving (churned)"]


def test_every_campaign_has_its_own_panel_starting_on_its_first_day(plans_result):
    fig = pressure_figure(plans_result)
    titles = [ax.get_title(loc="left") for ax in fig.axes]
    assert len(titles) == 5 + 1  # five campaigns, then spend
    assert titles[-1] == "spend so far"
    sale = fig.axes[[t.split()[0] for t in titles].index("holiday_sale")]
    assert titles[fig.axes.index(sale)] == "holiday_sale  (plans: holiday_sale, full_plan)"
    x, y = sale.lines[0].get_xdata(), sale.lines[0].get_ydata()
    on = x[:-1][y[:-1] > 0]
    assert on[0] == np.datetime64("2026-12-01") and on[-1] == np.datetime64("2026-12-31")
    # campaigns in the order they start: the article (Nov 8) before the sale (Dec 1)
    names = [t.split()[0] for t in titles[:-1]]
    assert names.index("newspaper_article") < names.index("holiday_sale")
    ax = plot_pressure(plans_result, "store_display", ax=Figure().subplots())
    assert len(ax.lines) == 1  # run alike in all four plans: one shape, the plans named
    assert all(0 <= y <= 1 for line in ax.lines for y in line.get_ydata())


def test_standard_plots_are_written(result, plans_result, tmp_path):
    paths = save_standard_plots(result, tmp_path / "one")
    # a single plan without campaigns: no uplift and no pressure plots
    assert [p.name for p in paths] == [
        "funnel.png",
        "occupancy.png",
        "cumulative.png",
        "dropoff.png",
    ]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in paths)
    paths = save_standard_plots(plans_result, tmp_path / "plans")
    assert [p.name for p in paths][-2:] == ["uplift.png", "pressure.png"]


CJK = """\
name: 自転車店
horizon: {start: 2026-11-01, periods: 6, step: week}
funnel:
  goal: 購入
  stages:
    認知: {dwell_days: 7, next: {関心: 0.4, lost: 0.6}}
    関心: {dwell_days: 5, next: {購入: 0.3, lost: 0.7}}
    購入: {dwell_days: 2, next: {lost: 1.0}}
population: {initial: {認知: 1000}}
arrivals: {per_day: 50, channels: {ソーシャル: 1.0}}
baseline:
  campaigns:
    年末セール: {start: 2026-11-20, end: 2026-12-05, effects: [{edge: 関心 -> 購入, lift: 2}]}
replicates: 5
seed: 1
"""


def _cjk_fonts() -> list[str]:
    return [
        f.name
        for f in font_manager.fontManager.ttflist
        if ord("購") in plots._charmap(f.fname) and not f.name.startswith("Last Resort")
    ]


@pytest.mark.parametrize("installed", [True, False], ids=["fonts-as-installed", "no-cjk-font"])
def test_non_latin_names_get_a_font_with_their_glyphs_and_no_warnings(
    tmp_path, monkeypatch, caplog, installed
):
    path = tmp_path / "cjk.yaml"
    path.write_text(CJK, encoding="utf-8")
    cjk = run(load_scenario(path))
    if not installed:
        monkeypatch.setattr(font_manager.fontManager, "ttflist", [])
    families = font_families(["認知 購入"])
    assert families[0] == "DejaVu Sans"
    if installed and _cjk_fonts():
        assert families[1] in _cjk_fonts()  # e.g. Noto Sans CJK where installed
    else:
        assert families == ["DejaVu Sans"]
    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.WARNING):
        warnings.simplefilter("always")
        save_standard_plots(cjk, tmp_path / "plots")
    assert [str(w.message) for w in caught] == []
    assert not [r for r in caplog.records if r.name.startswith("matplotlib")]
    assert font_families(["bike shop"]) == ["DejaVu Sans"]  # Latin: nothing to look up


def test_spend_so_far_adds_up_to_the_plan_spend(plans_result):
    ax = pressure_figure(plans_result).axes[-1]
    ends = [line.get_ydata()[-1] for line in ax.lines]
    assert np.allclose(ends, plans_result.dataset["spend"].sum("period").values)
    assert all(line.get_ydata()[0] == 0 for line in ax.lines)


def test_funnel_labels_new_arrivals_on_the_stage_they_enter(tmp_path):
    """Arrivals may enter a later stage than the funnel's first: the label follows them."""
    text = (SCENARIOS / "bike_shop.yaml").read_text(encoding="utf-8")
    text = text.replace("stage: awareness", "stage: interest")
    assert "stage: interest" in text
    path = tmp_path / "late_entry.yaml"
    path.write_text(text, encoding="utf-8")
    res = run(load_scenario(path), replicates=5, seed=1, engine="expected")
    numbers = plots._funnel_numbers(res, "baseline")
    stages = [s for s in res.stages if s != "lost"]
    arrivals = float(res.dataset["arrivals"].sum().values)
    assert numbers["arrived"][stages.index("interest")] == pytest.approx(arrivals, rel=1e-9)
    assert numbers["arrived"][stages.index("awareness")] == 0.0
