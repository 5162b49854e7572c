"""Plots are drawn headless, onto the Axes they are given, from the result alone."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from funnelsim.report.plots import (  # noqa: E402
    occupancy_figure,
    plot_funnel,
    plot_occupancy,
    save_standard_plots,
)
from funnelsim.scenario import load_scenario, run  # noqa: E402

from .conftest import SCENARIOS  # noqa: E402


@pytest.fixture(scope="module")
def result():
    return run(load_scenario(SCENARIOS / "bike_shop.yaml"), replicates=20)


def test_funnel_plot_draws_one_bar_per_stage_with_mean_volumes(result):
    ax = Figure().subplots()
    assert plot_funnel(result, ax=ax) is ax
    widths = [bar.get_width() for bar in ax.patches]
    assert len(widths) == 5  # lost is not a funnel bar
    conversions = float(result.conversions().mean())
    assert widths[3] == pytest.approx(conversions)  # conversion stage: nobody starts there
    assert widths == sorted(widths, reverse=True)


def test_occupancy_fan_chart_bands_contain_the_median(result):
    ax = Figure().subplots()
    assert plot_occupancy(result, "interest", ax=ax) is ax
    median = ax.lines[0].get_ydata()
    expected = result.dataset["occupancy"].sel(stage="interest").median("replicate").values[0]
    assert np.allclose(median, expected)
    assert len(ax.collections) == 2  # 5–95% and 25–75% bands


def test_standard_plots_are_written(result, tmp_path):
    paths = save_standard_plots(result, tmp_path)
    # a single plan without campaigns: no uplift and no pressure plots
    assert [p.name for p in paths] == [
        "funnel.png",
        "occupancy.png",
        "cumulative.png",
        "dropoff.png",
    ]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in paths)
    fig = occupancy_figure(result)
    assert sum(ax.get_visible() for ax in fig.axes) == len(result.stages)


@pytest.fixture(scope="module")
def plans_result():
    return run(load_scenario(SCENARIOS / "bike_shop_holiday.yaml"), replicates=30)


def test_cumulative_conversions_one_median_line_per_plan(plans_result):
    from funnelsim.report.plots import plot_cumulative_conversions

    ax = plot_cumulative_conversions(plans_result, ax=Figure().subplots())
    assert [line.get_label() for line in ax.lines] == plans_result.scenarios
    last = [line.get_ydata()[-1] for line in ax.lines]
    medians = plans_result.conversions().median("replicate").values
    assert np.allclose(last, medians)


def test_uplift_histograms_are_paired_differences(plans_result):
    from funnelsim.report.plots import plot_uplift

    ax = plot_uplift(plans_result, ax=Figure().subplots())
    counts = {}
    for patch in ax.patches:
        counts[patch.get_facecolor()] = counts.get(patch.get_facecolor(), 0) + patch.get_height()
    assert sorted(counts.values()) == [30, 30, 30]  # every replicate of every variant
    means = [line.get_xdata()[0] for line in ax.lines[:-1]]
    assert np.allclose(means, plans_result.uplift()["uplift_conversions"].mean("replicate"))


def test_dropoff_and_pressure(plans_result):
    from funnelsim.report.plots import plot_dropoff, plot_pressure

    ax = plot_dropoff(plans_result, ax=Figure().subplots())
    assert len(ax.patches) == 5 * len(plans_result.scenarios)
    lost = plans_result.dataset["flows"].sel(target="lost").sum(("period", "source"))
    assert sum(p.get_height() for p in ax.patches) == pytest.approx(
        float(lost.mean("replicate").sum())
    )
    ax = plot_pressure(plans_result, ax=Figure().subplots())
    labels = [line.get_label() for line in ax.lines]
    assert "holiday_sale (holiday_sale)" in labels and "store_display (baseline)" in labels
    assert all(0 <= y <= 1 for line in ax.lines for y in line.get_ydata())
