"""Standard plots of a :class:`~funnelsim.results.SimulationResult`.

Every ``plot_*`` function takes ``ax=`` (a new figure is made if omitted) and returns
the Axes; every ``*_figure`` function returns a Figure of several panels. They draw
what the result holds and compute no model. :func:`save_standard_plots` writes the
PNGs of ``funnelsim run`` without touching pyplot's global state, in a font that has
the glyphs of the stage, plan and campaign names where one is installed.

Dates: each period is drawn from its first day to the first day of the next, so an
end-of-period value sits at the period's end and a campaign starting on December 1st
starts on December 1st, not at the start of the week that holds it.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

import matplotlib
import matplotlib.dates as mdates
import numpy as np
from matplotlib import font_manager
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter

from funnelsim.funnel import LOST
from funnelsim.results import SimulationResult

__all__ = [
    "plot_funnel",
    "plot_occupancy",
    "occupancy_figure",
    "plot_cumulative_conversions",
    "plot_uplift",
    "plot_dropoff",
    "dropoff_figure",
    "plot_pressure",
    "plot_spend",
    "pressure_figure",
    "font_families",
    "save_standard_plots",
]

_BAND = "#4C72B0"
_COLORS = ["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C"]
_DEFAULT_FONT = "DejaVu Sans"
_DAY = np.timedelta64(1, "D")
_THOUSANDS = FuncFormatter(lambda v, _: f"{v:,.0f}")


# ---------------------------------------------------------------- helpers
def _axes(ax: Axes | None) -> Axes:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(7, 4))[1]


def _color(result: SimulationResult, scenario: str) -> str:
    """Each plan keeps one colour in every chart (the baseline the first)."""
    return _COLORS[result.scenarios.index(scenario) % len(_COLORS)]


def _plans(result: SimulationResult, scenario: str | None) -> list[str]:
    return [scenario] if scenario is not None else result.scenarios


def _title(result: SimulationResult) -> str:
    return str(result.dataset.attrs.get("title", ""))


def _period_edges(result: SimulationResult) -> np.ndarray:
    """Boundaries of the reporting periods: the first day of each period, then the day
    after the horizon (``n_periods + 1`` dates)."""
    ds = result.dataset
    starts = ds["period"].values.astype("datetime64[D]")
    if ds.sizes.get("day", 0):
        length = np.timedelta64(round(ds.sizes["day"] / len(starts)), "D")
    elif len(starts) > 1:
        length = starts[1] - starts[0]
    else:
        length = _DAY
    return np.append(starts, starts[-1] + length)


def _date_axis(ax: Axes, edges: np.ndarray, most: int = 7) -> None:
    """Month ticks labelled with the year ("Nov 2026") on the first of the month, day
    ticks for horizons under seven weeks; the axis spans exactly the horizon, and with
    weekly (or longer) periods a faint tick marks every period boundary."""
    start, end = edges[0], edges[-1]
    span = int((end - start) / _DAY)
    if span >= 49:
        months = span / 30.4
        locator: mdates.DateLocator = mdates.MonthLocator(interval=max(1, math.ceil(months / most)))
        formatter = mdates.DateFormatter("%b %Y")
    else:
        locator = mdates.AutoDateLocator(minticks=2, maxticks=max(most - 2, 3))
        formatter = mdates.DateFormatter("%d %b %Y")
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(formatter)
    if len(edges) > 2 and (edges[1] - edges[0]) >= np.timedelta64(7, "D"):
        ax.xaxis.set_minor_locator(FixedLocator(mdates.date2num(edges)))
        ax.tick_params(axis="x", which="minor", length=3, color="#999999")
    ax.set_xlim(start, end)
    ax.tick_params(axis="x", labelsize=8)


# ---------------------------------------------------------------- fonts
@lru_cache(maxsize=64)
def _charmap(path: str) -> frozenset[int]:
    from matplotlib.ft2font import FT2Font

    try:
        return frozenset(FT2Font(path).get_charmap())
    except (OSError, RuntimeError):  # an unreadable font file covers nothing
        return frozenset()


def font_families(texts: Iterable[str]) -> list[str]:
    """Font families that together have a glyph for every character of ``texts``:
    DejaVu Sans first, then installed fonts (regular sans first) covering what it lacks,
    for matplotlib's per-glyph fallback. Characters no installed font has are left to
    DejaVu Sans (drawn as boxes)."""
    chars = {ord(c) for text in texts for c in text if not c.isspace()}
    default = font_manager.findfont(_DEFAULT_FONT, fallback_to_default=True)
    missing = chars - _charmap(default)
    families = [_DEFAULT_FONT]
    candidates = sorted(
        # matplotlib's "Last Resort" font maps every character to a box: never a choice
        (f for f in font_manager.fontManager.ttflist if not f.name.startswith("Last Resort")),
        key=lambda f: (
            "Mono" in f.name,
            "Serif" in f.name,
            f.style != "normal",
            abs(_weight(f.weight) - 400),
            f.name,
            f.fname,
        ),
    )
    while missing:
        best, covered = None, 0
        for font in candidates:
            n = len(missing & _charmap(font.fname))
            if n > covered:
                best, covered = font, n
        if best is None:
            break
        families.append(best.name)
        missing -= _charmap(best.fname)
    return families


def _weight(weight: int | str) -> int:
    if isinstance(weight, int):
        return weight
    return int(font_manager.weight_dict.get(weight, 400))


def _names(result: SimulationResult) -> list[str]:
    """Every name the plots may write."""
    ds = result.dataset
    texts = [_title(result), *result.stages, *result.scenarios]
    if "label" in ds.coords:
        texts += [str(v) for v in ds["label"].values]
    if "campaign" in ds.coords:
        texts += [str(v) for v in ds["campaign"].values]
    return texts


@contextmanager
def _plot_style(result: SimulationResult) -> Iterator[None]:
    """Fonts with the glyphs of the result's names, and no missing-glyph warnings,
    only while drawing these figures."""
    with (
        matplotlib.rc_context({"font.family": font_families(_names(result))}),
        warnings.catch_warnings(),
    ):
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from", category=UserWarning)
        warnings.filterwarnings("ignore", message=r"Matplotlib currently does not support")
        yield


# ---------------------------------------------------------------- funnel
def _funnel_numbers(result: SimulationResult, scenario: str) -> dict[str, np.ndarray]:
    """Means over replicates, per stage (``lost`` left out): people entering (at the
    start, arriving or moving in), repeat events, and each edge's share of the moves out
    of its source (repeat events are not moves out)."""
    ds = result.dataset.sel(scenario=scenario)
    stages = [s for s in result.stages if s != LOST]
    flows = ds["flows"].sum("period").mean("replicate").sel(source=stages, target=stages).values
    all_flows = ds["flows"].sum("period").mean("replicate").sel(source=stages).values
    into = result.entries().sel(scenario=scenario, stage=stages).sum("period")
    entries = into.mean("replicate").values
    initial = ds["initial"].sel(stage=stages).mean("replicate").values
    repeats = np.diag(flows).copy()
    exits = all_flows.sum(axis=1) - repeats
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(exits[:, None] > 0, flows / exits[:, None], np.nan)
    np.fill_diagonal(share, np.nan)
    # new arrivals: entries not explained by a move (from any stage, lost and repeats
    # included), which finds the stage arrivals really enter
    moved_in = ds["flows"].sum("period").mean("replicate").sel(target=stages).sum("source")
    arrived = np.clip(entries - moved_in.values, 0.0, None)
    arrived[arrived < 1e-9 * max(float(entries.max()), 1.0)] = 0.0
    return {
        "entering": initial + entries - repeats,
        "repeats": repeats,
        "flows": flows,
        "share": share,
        "initial": initial,
        "arrived": arrived,
        "from_lost": ds["flows"]
        .sum("period")
        .mean("replicate")
        .sel(source=LOST, target=stages)
        .values,
    }


def _sources(stages: list[str], numbers: dict[str, np.ndarray], j: int) -> dict[str, tuple]:
    """Where the people entering stage j came from: ``key → (people, text)`` for new
    arrivals, people there at the start, people back from ``lost``, and moves along each
    edge, given as a share of the moves out of their source ("30% of those leaving
    desire")."""
    found: dict[str, tuple] = {}
    for i, source in enumerate(stages):
        people = float(numbers["flows"][i, j])
        if i != j and people > 0:
            share = numbers["share"][i, j]
            found[source] = (people, f"{share:.0%} of those leaving {source}")
    for key, text in (
        ("arrived", "new arrivals"),
        ("initial", "at the start"),
        ("from_lost", f"back from {LOST}"),
    ):
        if numbers[key][j] > 0:
            found[key] = (float(numbers[key][j]), f"{numbers[key][j]:,.0f} {text}")
    return found


def _notes(stages: list[str], numbers: dict[str, dict[str, np.ndarray]], most: int) -> dict:
    """``(plan, stage index) → note``: the ``most`` largest sources of each stage in the
    first plan drawn, named alike for every plan so the bars compare."""
    first = next(iter(numbers.values()))
    notes = {}
    for j in range(len(stages)):
        ranked = sorted(_sources(stages, first, j).items(), key=lambda kv: -kv[1][0])
        keys = [key for key, _ in ranked[:most]]
        for name, v in numbers.items():
            found = _sources(stages, v, j)
            notes[name, j] = "; ".join(found[k][1] for k in keys if k in found)
    return notes


def plot_funnel(
    result: SimulationResult, scenario: str | None = None, ax: Axes | None = None
) -> Axes:
    """People entering each stage over the horizon (there at the start, arriving, or
    moving in from another stage; mean over replicates), with repeat events in a paler
    extension, for every plan (or just ``scenario``). Each bar is labelled with its
    total and the largest moves into the stage as a share of the people leaving the
    stage they come from: ratios only along edges that exist, never above 100%.
    Entries count people again when they come back (interest → awareness → interest)."""
    ax = _axes(ax)
    plans = _plans(result, scenario)
    stages = [s for s in result.stages if s != LOST]
    numbers = {name: _funnel_numbers(result, name) for name in plans}
    n = len(plans)
    height = 0.8 / n
    widest = max(float((v["entering"] + v["repeats"]).max(initial=0)) for v in numbers.values())
    widest = widest if widest > 0 else 1.0
    any_repeats = any(v["repeats"].sum() > 0 for v in numbers.values())
    notes = _notes(stages, numbers, most=2)
    for k, name in enumerate(plans):
        v = numbers[name]
        y = np.arange(len(stages)) + (k - (n - 1) / 2) * height
        color = _color(result, name)
        ax.barh(y, v["entering"], height=height * 0.92, color=color, label=name)
        if any_repeats:
            ax.barh(
                y,
                v["repeats"],
                left=v["entering"],
                height=height * 0.92,
                color=color,
                alpha=0.35,
                hatch="///",
                edgecolor="white",
                lw=0,
            )
        for j, yy in enumerate(y):
            total = v["entering"][j] + v["repeats"][j]
            text = f"{total:,.0f}"
            if v["repeats"][j] > 0:
                text += f" ({v['repeats'][j]:,.0f} repeats)"
            note = notes[name, j]
            if note:
                text += ("\n" if n == 1 else " · ") + note
            ax.text(total + widest * 0.01, yy, text, va="center", fontsize=8 if n == 1 else 7)
    ax.set_yticks(np.arange(len(stages)), stages)
    ax.invert_yaxis()
    ax.set_xlim(0, widest * (1.75 if n == 1 else 2.3))
    ax.set_xlabel("people entering the stage over the horizon (mean)", fontsize=8)
    ax.xaxis.set_major_formatter(_THOUSANDS)
    ax.tick_params(axis="x", labelsize=8)
    ax.tick_params(axis="y", length=0)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    handles, labels = ax.get_legend_handles_labels()
    if any_repeats:
        from matplotlib.patches import Patch

        handles.append(Patch(facecolor="#999999", alpha=0.35, hatch="///", edgecolor="white"))
        labels.append("repeat events")
    if n > 1 or any_repeats:
        ax.legend(handles, labels, fontsize=7, loc="lower right", frameon=False)
    plan = f" — plan {scenario}" if scenario is not None and len(result.scenarios) > 1 else ""
    reps = result.dataset.sizes["replicate"]
    ax.set_title(
        f"{_title(result)}{plan}: people through each stage (mean of {reps} replicates)",
        fontsize=10,
    )
    return ax


# ---------------------------------------------------------------- occupancy
def plot_occupancy(
    result: SimulationResult, stage: str, scenario: str | None = None, ax: Axes | None = None
) -> Axes:
    """People in ``stage`` from the start to the end of each period. One plan (or a
    result of one plan): a fan chart of the median, 25–75% and 5–95% across replicates;
    several plans: each plan's median and 5–95% band in its colour."""
    ax = _axes(ax)
    plans = _plans(result, scenario)
    ds = result.dataset
    x = _period_edges(result)  # the start, then each period's end
    fan = len(plans) == 1
    qs = [0.05, 0.25, 0.5, 0.75, 0.95] if fan else [0.05, 0.5, 0.95]
    for name in plans:
        start = ds["initial"].sel(scenario=name, stage=stage)
        path = ds["occupancy"].sel(scenario=name, stage=stage)
        q = np.column_stack(
            [start.quantile(qs, dim="replicate").values, path.quantile(qs, dim="replicate").values]
        )
        color = _BAND if fan else _color(result, name)
        mid = len(qs) // 2
        ax.fill_between(
            x,
            q[0],
            q[-1],
            color=color,
            alpha=0.2 if fan else 0.15,
            lw=0,
            label="5–95%" if fan else None,
        )
        if fan:
            ax.fill_between(x, q[1], q[3], color=color, alpha=0.35, lw=0, label="25–75%")
        ax.plot(x, q[mid], color=color, lw=1.5, label="median" if fan else name)
    gone = f"{LOST} (people gone, before or after converting)"
    ax.set_title(stage if stage != LOST else gone, fontsize=9)
    _date_axis(ax, _period_edges(result), most=4)
    ax.tick_params(axis="y", labelsize=8)
    ax.yaxis.set_major_formatter(_THOUSANDS)
    ax.set_ylim(bottom=0)
    return ax


def occupancy_figure(result: SimulationResult, scenario: str | None = None) -> Figure:
    """One panel per stage (``lost`` last): every plan of the result, or ``scenario``."""
    stages = result.stages
    plans = _plans(result, scenario)
    cols = 3
    rows = int(np.ceil(len(stages) / cols))
    fig = Figure(figsize=(4 * cols, 2.6 * rows + 0.6), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, stage in zip(axes, stages):
        plot_occupancy(result, stage, scenario, ax=ax)
    for ax in axes[len(stages) :]:
        ax.set_visible(False)
    if len(plans) == 1:
        axes[0].legend(fontsize=7, loc="best")
        plan = f" — plan {plans[0]}" if len(result.scenarios) > 1 else ""
        what = "median, 25–75% and 5–95% of replicates"
    else:
        fig.legend(
            *axes[0].get_legend_handles_labels(),
            loc="outside lower center",
            ncols=min(len(plans), 6),
            fontsize=8,
            frameon=False,
        )
        plan, what = "", "median and 5–95% of replicates per plan"
    fig.suptitle(f"{_title(result)}{plan}: people in each stage ({what})", fontsize=11)
    return fig


# ---------------------------------------------------------------- conversions
def plot_cumulative_conversions(result: SimulationResult, ax: Axes | None = None) -> Axes:
    """Conversions so far per plan, from zero at the start to each period's end:
    median and 5–95% band."""
    ax = _axes(ax)
    cum = result.conversions(cumulative=True)
    x = _period_edges(result)  # the start, then each period's end
    for name in result.scenarios:
        q = cum.sel(scenario=name).quantile([0.05, 0.5, 0.95], dim="replicate").values
        q = np.column_stack([np.zeros(3), q])
        color = _color(result, name)
        ax.fill_between(x, q[0], q[2], color=color, alpha=0.2, lw=0)
        ax.plot(x, q[1], color=color, lw=1.8, label=name)
    goal = "" if result.goal == "conversion" else f" ({result.goal})"
    ax.set_ylabel(f"conversions{goal} so far", fontsize=9)
    ax.yaxis.set_major_formatter(_THOUSANDS)
    ax.set_ylim(bottom=0)
    ax.set_title(f"{_title(result)}: cumulative conversions (median, 5–95%)", fontsize=10)
    ax.legend(fontsize=8, loc="upper left", frameon=False)
    _date_axis(ax, _period_edges(result))
    return ax


def plot_uplift(
    result: SimulationResult, metric: str = "conversions", ax: Axes | None = None
) -> Axes:
    """Distribution across replicates of each variant's paired uplift over the baseline."""
    ax = _axes(ax)
    up = result.uplift()[f"uplift_{metric}"]
    values = up.values
    bins = np.histogram_bin_edges(values[np.isfinite(values)], bins=40)
    for name in result.variants:
        v = up.sel(scenario=name).values
        color = _color(result, name)
        ax.hist(
            v,
            bins=bins.tolist(),
            color=color,
            alpha=0.55,
            label=f"{name}: mean {np.mean(v):+,.0f}, P(>0) = {np.mean(v > 0):.0%}",
        )
        ax.axvline(np.mean(v), color=color, lw=1.2)
    ax.axvline(0.0, color="black", lw=1, ls="--")
    ax.set_xlabel(f"{metric} vs baseline (per replicate, paired)", fontsize=9)
    ax.set_ylabel("replicates", fontsize=9)
    ax.set_title(f"{_title(result)}: uplift in {metric} over the baseline", fontsize=10)
    ax.legend(fontsize=8, frameon=False)
    return ax


# ---------------------------------------------------------------- drop-off
def plot_dropoff(result: SimulationResult, part: str = "before", ax: Axes | None = None) -> Axes:
    """Mean moves into ``lost`` per source stage and plan. ``part="before"``: from the
    stages before the goal (people who left without converting, the ``lost`` metric);
    ``part="after"``: from the goal and the stages after it (customers leaving, the
    ``churned`` metric)."""
    ax = _axes(ax)
    before = result.before_goal()
    stages = [s for s in result.stages if s != LOST]
    stages = before if part == "before" else [s for s in stages if s not in before]
    flows = result.dropoff().mean("replicate")
    x = np.arange(len(stages))
    n = len(result.scenarios)
    width = 0.8 / n
    for k, name in enumerate(result.scenarios):
        values = [float(flows.sel(scenario=name, source=s)) for s in stages]
        ax.bar(
            x + (k - (n - 1) / 2) * width,
            values,
            width,
            color=_color(result, name),
            label=name,
            hatch=None if part == "before" else "...",
            edgecolor="white",
            lw=0,
        )
    ax.set_xticks(x, stages, fontsize=8)
    if part == "before":
        ax.set_ylabel("people", fontsize=9)
        ax.set_title("Left before converting (lost)", fontsize=10)
    else:
        ax.set_title("Customers leaving (churned)", fontsize=10)
    ax.set_xlabel("stage they left from", fontsize=8)
    ax.yaxis.set_major_formatter(_THOUSANDS)
    ax.tick_params(axis="y", labelsize=8)
    ax.spines[["top", "right"]].set_visible(False)
    return ax


def dropoff_figure(result: SimulationResult) -> Figure:
    """Two panels on their own scales: drop-off before converting, and customers
    leaving after converting (left out if nobody can leave from there)."""
    before = result.before_goal()
    after = [s for s in result.stages if s != LOST and s not in before]
    churn = float(result.dropoff().sel(source=after).sum()) > 0
    widths = [max(len(before), 1), max(len(after), 1)] if churn else [1]
    fig = Figure(figsize=(8.5, 4.2), layout="constrained")
    axes = fig.subplots(1, len(widths), squeeze=False, width_ratios=widths).ravel()
    if before:
        plot_dropoff(result, "before", ax=axes[0])
    else:
        axes[0].set_visible(False)
    if churn:
        plot_dropoff(result, "after", ax=axes[1])
    if len(result.scenarios) > 1:
        fig.legend(
            *axes[-1].get_legend_handles_labels(),
            loc="outside lower center",
            ncols=min(len(result.scenarios), 6),
            fontsize=8,
            frameon=False,
        )
    fig.suptitle(f"{_title(result)}: where people leave (mean over replicates)", fontsize=11)
    return fig


# ---------------------------------------------------------------- campaigns
def _pressure_steps(
    result: SimulationResult, scenario: str, campaign: str
) -> tuple[np.ndarray, np.ndarray]:
    """Boundaries and values of a campaign's pressure: daily if the result has it,
    else the mean of each period."""
    ds = result.dataset
    if "pressure_daily" in ds and ds.sizes.get("day", 0):
        days = ds["day"].values.astype("datetime64[D]")
        edges = np.append(days, days[-1] + _DAY)
        return edges, ds["pressure_daily"].sel(scenario=scenario, campaign=campaign).values
    return _period_edges(result), ds["pressure"].sel(scenario=scenario, campaign=campaign).values


def plot_pressure(result: SimulationResult, campaign: str, ax: Axes | None = None) -> Axes:
    """One campaign's pressure (0–1) day by day, in each plan that runs it: one grey
    shape when every such plan runs it alike (the plans are named), else one line per
    plan in its colour."""
    ax = _axes(ax)
    runs: list[tuple[np.ndarray, np.ndarray, list[str]]] = []
    for name in result.scenarios:
        edges, curve = _pressure_steps(result, name, campaign)
        if not curve.any():
            continue
        for known in runs:
            if np.array_equal(known[1], curve):
                known[2].append(name)
                break
        else:
            runs.append((edges, curve, [name]))
    for edges, curve, plans in runs:
        y = np.append(curve, curve[-1])
        color = "#555555" if len(runs) == 1 else _color(result, plans[0])
        ax.fill_between(
            edges, y, step="post", color=color, alpha=0.3 if len(runs) == 1 else 0.12, lw=0
        )
        ax.step(
            edges,
            y,
            where="post",
            color=color,
            lw=1.2,
            label=", ".join(plans) if len(runs) > 1 else None,
        )
    plans_text = ", ".join(p for run in runs for p in run[2]) if len(runs) == 1 else ""
    ax.set_title(
        f"{campaign}" + (f"  (plans: {plans_text})" if plans_text else ""), fontsize=9, loc="left"
    )
    if len(runs) > 1:
        _plans_legend(ax)
    ax.set_ylim(0, 1.08)
    ax.set_yticks([0, 1])
    ax.tick_params(axis="y", labelsize=7)
    ax.spines[["top", "right"]].set_visible(False)
    _date_axis(ax, _period_edges(result))
    return ax


def _plans_legend(ax: Axes) -> None:
    """A small legend of plans to the right of a panel, clear of its lines."""
    ax.legend(
        fontsize=7,
        loc="upper left",
        bbox_to_anchor=(1.0, 1.0),
        frameon=False,
        title="plans",
        title_fontsize=7,
    )


def plot_spend(result: SimulationResult, ax: Axes | None = None) -> Axes:
    """Money spent on campaigns so far, per plan: from zero at the start, day by day
    where the result has it (else at each period's end), so one-off costs show as steps
    and running costs as slopes. Plans that spend alike overlap; earlier plans are
    drawn wider so they show beneath."""
    ax = _axes(ax)
    ds = result.dataset
    daily = "spend_daily" in ds and ds.sizes.get("day", 0) > 0
    if daily:
        days = ds["day"].values.astype("datetime64[D]")
        edges = np.append(days, days[-1] + _DAY)
    else:
        edges = _period_edges(result)
    n = len(result.scenarios)
    for k, name in enumerate(result.scenarios):
        spend = ds["spend_daily" if daily else "spend"].sel(scenario=name).values
        width = 1.2 + 2.0 * (n - 1 - k) / max(n - 1, 1)  # later plans thinner, on top
        ax.plot(
            edges, np.r_[0.0, np.cumsum(spend)], color=_color(result, name), lw=width, label=name
        )
    ax.yaxis.set_major_formatter(_THOUSANDS)
    ax.set_title("spend so far", fontsize=9, loc="left")
    ax.set_ylim(bottom=0)
    ax.tick_params(axis="y", labelsize=7)
    ax.spines[["top", "right"]].set_visible(False)
    _plans_legend(ax)
    _date_axis(ax, edges)
    return ax


def _campaigns_in_time_order(result: SimulationResult) -> list[str]:
    """Campaigns by the first day they act in any plan (then by name): a Gantt order."""
    ds = result.dataset
    names = [str(c) for c in ds["campaign"].values]
    var = "pressure_daily" if "pressure_daily" in ds and ds.sizes.get("day", 0) else "pressure"
    on = (ds[var] > 0).any("scenario").values
    first = [int(np.argmax(row)) if row.any() else len(row) for row in on]
    return [name for _, name in sorted(zip(first, names))]


def pressure_figure(result: SimulationResult) -> Figure:
    """One small panel per campaign (pressure day by day, plans named), in the order
    they start, above a panel of spend per plan (left out if nothing is spent); one
    shared date axis."""
    campaigns = _campaigns_in_time_order(result)
    spends = bool(result.dataset["spend"].any())
    heights = [1.0] * len(campaigns) + ([2.0] if spends else [])
    fig = Figure(
        figsize=(8.5, 1.05 * len(campaigns) + (2.4 if spends else 0.9)), layout="constrained"
    )
    axes = fig.subplots(len(heights), 1, sharex=True, height_ratios=heights, squeeze=False)
    axes = axes.ravel()
    for ax, campaign in zip(axes, campaigns):
        plot_pressure(result, campaign, ax=ax)
        ax.tick_params(axis="x", labelbottom=False)
    if spends:
        plot_spend(result, ax=axes[-1])
    axes[-1].tick_params(axis="x", labelbottom=True)
    what = " and spend" if spends else ""
    fig.suptitle(f"{_title(result)}: campaign pressure (0 = off, 1 = full){what}", fontsize=11)
    return fig


# ---------------------------------------------------------------- files
def save_standard_plots(result: SimulationResult, folder: str | Path) -> list[Path]:
    """Write ``funnel.png``, ``occupancy.png``, ``cumulative.png``, ``dropoff.png``, and
    ``uplift.png`` (with variants) and ``pressure.png`` (with campaigns) into ``folder``;
    return their paths. Fonts cover the names drawn where an installed font has their
    glyphs, and no missing-glyph warning escapes."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    n_plans = len(result.scenarios)
    n_stages = len([s for s in result.stages if s != LOST])

    def save(name: str, fig: Figure, dpi: int = 120) -> None:
        fig.savefig(folder / name, dpi=dpi)
        paths.append(folder / name)

    def single(draw: Callable[[Axes], Axes], size: tuple[float, float] = (7.5, 4.5)) -> Figure:
        fig = Figure(figsize=size, layout="constrained")
        draw(fig.subplots())
        return fig

    with _plot_style(result):
        funnel_height = 1.2 + n_stages * (0.75 if n_plans == 1 else 0.28 * n_plans + 0.2)
        save("funnel.png", single(lambda ax: plot_funnel(result, ax=ax), (9, funnel_height)))
        save("occupancy.png", occupancy_figure(result), dpi=110)
        save("cumulative.png", single(lambda ax: plot_cumulative_conversions(result, ax=ax)))
        save("dropoff.png", dropoff_figure(result))
        if result.variants:
            save("uplift.png", single(lambda ax: plot_uplift(result, ax=ax)))
        if result.dataset.sizes.get("campaign", 0):
            save("pressure.png", pressure_figure(result))
    return paths
