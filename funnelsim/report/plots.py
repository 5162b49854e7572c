"""Standard plots of a :class:`~funnelsim.results.SimulationResult`.

Every ``plot_*`` function takes ``ax=`` (a new figure is made if omitted) and returns
the Axes. :func:`save_standard_plots` writes the PNGs of ``funnelsim run`` without
touching pyplot's global state.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.dates as mdates
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from funnelsim.funnel import LOST
from funnelsim.results import SimulationResult

__all__ = ["plot_funnel", "plot_occupancy", "occupancy_figure", "save_standard_plots"]

_BAND = "#4C72B0"


def _axes(ax: Axes | None) -> Axes:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(7, 4))[1]


def _scenario(result: SimulationResult, scenario: str | None) -> str:
    return scenario if scenario is not None else result.scenarios[0]


def plot_funnel(result: SimulationResult, scenario: str | None = None, ax: Axes | None = None) -> Axes:
    """Funnel chart: mean people passing through each stage over the horizon (starting
    there or entering it, repeats included) and the ratio of each stage to the one above."""
    ax = _axes(ax)
    name = _scenario(result, scenario)
    stages = [s for s in result.stages if s != LOST]
    ds = result.dataset.sel(scenario=name)
    volume = (result.entries().sel(scenario=name).sum("period") + ds["initial"]).mean("replicate")
    values = np.array([float(volume.sel(stage=s)) for s in stages])
    y = np.arange(len(stages))[::-1]
    widest = values.max() if values.size and values.max() > 0 else 1.0
    ax.barh(y, values, left=(widest - values) / 2, color=_BAND, alpha=0.85, height=0.75)
    for k, (yy, v) in enumerate(zip(y, values)):
        label = f"{v:,.0f}"
        if k > 0 and values[k - 1] > 0:
            label += f"\n{v / values[k - 1]:.0%} of {stages[k - 1]}"
        ax.text((widest + v) / 2 + widest * 0.02, yy, label, ha="left", va="center", fontsize=8.5)
    ax.set_yticks(y, stages)
    ax.set_xlim(0, widest * 1.35)
    ax.set_xticks([])
    ax.tick_params(axis="y", length=0)
    for side in ("top", "right", "left", "bottom"):
        ax.spines[side].set_visible(False)
    ax.set_title(f"{result.dataset.attrs.get('title', name)}: people through each stage "
                 f"(mean of {ds.sizes['replicate']} replicates)", fontsize=10)
    return ax


def plot_occupancy(
    result: SimulationResult, stage: str, scenario: str | None = None, ax: Axes | None = None
) -> Axes:
    """Fan chart of people in ``stage`` over time: median, 25–75% and 5–95% bands."""
    ax = _axes(ax)
    da = result.dataset["occupancy"].sel(scenario=_scenario(result, scenario), stage=stage)
    q = da.quantile([0.05, 0.25, 0.5, 0.75, 0.95], dim="replicate").values
    t = result.dataset["period"].values
    ax.fill_between(t, q[0], q[4], color=_BAND, alpha=0.2, lw=0, label="5–95%")
    ax.fill_between(t, q[1], q[3], color=_BAND, alpha=0.35, lw=0, label="25–75%")
    ax.plot(t, q[2], color=_BAND, lw=1.5, label="median")
    ax.set_title(stage, fontsize=10)
    locator = mdates.AutoDateLocator(maxticks=6)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    ax.tick_params(axis="x", labelsize=8)
    ax.tick_params(axis="y", labelsize=8)
    return ax


def occupancy_figure(result: SimulationResult, scenario: str | None = None) -> Figure:
    """One fan chart per stage (``lost`` last) in a grid."""
    stages = result.stages
    cols = 3
    rows = int(np.ceil(len(stages) / cols))
    fig = Figure(figsize=(4 * cols, 2.8 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, stage in zip(axes, stages):
        plot_occupancy(result, stage, scenario, ax=ax)
    for ax in axes[len(stages):]:
        ax.set_visible(False)
    axes[0].legend(fontsize=7, loc="best")
    fig.suptitle("People in each stage (end of period)", fontsize=11)
    return fig


def save_standard_plots(result: SimulationResult, folder: str | Path) -> list[Path]:
    """Write ``funnel.png`` and ``occupancy.png`` into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=(7, 4.5), layout="constrained")
    plot_funnel(result, ax=fig.subplots())
    paths = [folder / "funnel.png", folder / "occupancy.png"]
    fig.savefig(paths[0], dpi=120)
    occupancy_figure(result).savefig(paths[1], dpi=110)
    return paths
