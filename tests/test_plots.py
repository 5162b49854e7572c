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
    assert [p.name for p in paths] == ["funnel.png", "occupancy.png"]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in paths)
    fig = occupancy_figure(result)
    assert sum(ax.get_visible() for ax in fig.axes) == len(result.stages)
