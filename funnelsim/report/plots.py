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

__all__ = [
    "plot_funnel",
    "plot_occupancy",
    "occupancy_figure",
    "plot_cumulative_conversions",
    "plot_uplift",
    "plot_dropoff",
    "plot_pressure",
    "save_standard_plots",
]

_BAND = "#4C72B0"
_COLORS = ["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C"]


def _date_axis(ax: Axes) -> None:
    locator = mdates.AutoDateLocator(maxticks=6)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


def _axes(ax: Axes | None) -> Axes:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(7, 4))[1]


def _scenario(result: SimulationResult, scenario: str | None) -> str:
    return scenario if scenario is not None else result.scenarios[0]


def plot_funnel(
    result: SimulationResult, scenario: str | None = None, ax: Axes | None = None
) -> Axes:
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
    ax.set_title(
        f"{result.dataset.attrs.get('title', name)}: people through each stage "
        f"(mean of {ds.sizes['replicate']} replicates)",
        fontsize=10,
    )
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
    _date_axis(ax)
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
    for ax in axes[len(stages) :]:
        ax.set_visible(False)
    axes[0].legend(fontsize=7, loc="best")
    fig.suptitle("People in each stage (end of period)", fontsize=11)
    return fig


def plot_cumulative_conversions(result: SimulationResult, ax: Axes | None = None) -> Axes:
    """Cumulative conversions per scenario: median and 5–95% band."""
    ax = _axes(ax)
    cum = result.conversions(cumulative=True)
    t = result.dataset["period"].values
    for k, name in enumerate(result.scenarios):
        q = cum.sel(scenario=name).quantile([0.05, 0.5, 0.95], dim="replicate").values
        color = _COLORS[k % len(_COLORS)]
        ax.fill_between(t, q[0], q[2], color=color, alpha=0.2, lw=0)
        ax.plot(t, q[1], color=color, lw=1.8, label=name)
    ax.set_ylabel("conversions so far")
    ax.set_title("Cumulative conversions (median, 5–95%)", fontsize=10)
    ax.legend(fontsize=8, loc="upper left")
    _date_axis(ax)
    return ax


def plot_uplift(
    result: SimulationResult, metric: str = "conversions", ax: Axes | None = None
) -> Axes:
    """Distribution across replicates of each variant's paired uplift over the baseline."""
    ax = _axes(ax)
    up = result.uplift()[f"uplift_{metric}"]
    values = up.values
    bins = np.histogram_bin_edges(values[np.isfinite(values)], bins=40)
    for k, name in enumerate(result.variants):
        v = up.sel(scenario=name).values
        color = _COLORS[(k + 1) % len(_COLORS)]
        ax.hist(
            v,
            bins=bins.tolist(),
            color=color,
            alpha=0.55,
            label=f"{name}: P(>0) = {np.mean(v > 0):.0%}",
        )
        ax.axvline(np.mean(v), color=color, lw=1.2)
    ax.axvline(0.0, color="black", lw=1, ls="--")
    ax.set_xlabel(f"{metric} vs baseline (per replicate, paired)")
    ax.set_ylabel("replicates")
    ax.set_title(f"Uplift in {metric}", fontsize=10)
    ax.legend(fontsize=8)
    return ax


def plot_dropoff(result: SimulationResult, ax: Axes | None = None) -> Axes:
    """Where people leave the funnel: mean drop-offs from each stage, per scenario."""
    ax = _axes(ax)
    flows = result.dataset["flows"].sel(target=LOST, drop=True).sum("period").mean("replicate")
    stages = [s for s in result.stages if s != LOST]
    x = np.arange(len(stages))
    width = 0.8 / len(result.scenarios)
    for k, name in enumerate(result.scenarios):
        values = [float(flows.sel(scenario=name, source=s)) for s in stages]
        ax.bar(
            x + (k - (len(result.scenarios) - 1) / 2) * width,
            values,
            width,
            color=_COLORS[k % len(_COLORS)],
            label=name,
        )
    ax.set_xticks(x, stages, fontsize=8)
    ax.set_ylabel("people lost from the stage")
    ax.set_title("Drop-off: where people leave the funnel (mean)", fontsize=10)
    ax.legend(fontsize=8)
    return ax


def plot_pressure(result: SimulationResult, ax: Axes | None = None) -> Axes:
    """Each campaign's pressure (0–1) over time, in every scenario that runs it."""
    ax = _axes(ax)
    ds = result.dataset
    t = ds["period"].values
    k = 0
    for campaign in [str(c) for c in ds["campaign"].values]:
        seen: list[np.ndarray] = []  # a campaign run alike in several scenarios: one line
        for name in result.scenarios:
            curve = ds["pressure"].sel(scenario=name, campaign=campaign).values
            if not curve.any() or any(np.array_equal(curve, c) for c in seen):
                continue
            seen.append(curve)
            ax.step(
                t,
                curve,
                where="post",
                color=_COLORS[k % len(_COLORS)],
                lw=1.5,
                label=f"{campaign} ({name})",
            )
            k += 1
    ax.set_ylim(-0.02, 1.02)
    ax.set_ylabel("pressure")
    ax.set_title("Campaign pressure (mean per period)", fontsize=10)
    if k:
        ax.legend(fontsize=7, loc="upper right")
    _date_axis(ax)
    return ax


def save_standard_plots(result: SimulationResult, folder: str | Path) -> list[Path]:
    """Write ``funnel.png``, ``occupancy.png``, ``cumulative.png``, ``dropoff.png``, and
    ``uplift.png`` (with variants) and ``pressure.png`` (with campaigns) into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []

    def save(name: str, draw, size=(7, 4.5)) -> None:  # noqa: ANN001
        fig = Figure(figsize=size, layout="constrained")
        draw(fig.subplots())
        fig.savefig(folder / name, dpi=120)
        paths.append(folder / name)

    save("funnel.png", lambda ax: plot_funnel(result, ax=ax))
    occupancy_figure(result).savefig(folder / "occupancy.png", dpi=110)
    paths.append(folder / "occupancy.png")
    save("cumulative.png", lambda ax: plot_cumulative_conversions(result, ax=ax))
    save("dropoff.png", lambda ax: plot_dropoff(result, ax=ax))
    if result.variants:
        save("uplift.png", lambda ax: plot_uplift(result, ax=ax))
    if result.dataset.sizes.get("campaign", 0):
        save("pressure.png", lambda ax: plot_pressure(result, ax=ax))
    return paths
