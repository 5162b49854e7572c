"""Plots of a fit from aggregate funnel counts and spend.

Plain functions on arrays: the fitter computes the numbers (posterior predictive bands,
contributions, response curves) and these functions draw them, each returning a
matplotlib Figure about 1,000 px wide at the report's resolution. They never compute a
model. Fonts cover the stage and campaign names where an installed font has their
glyphs (as in :mod:`funnelsim.report.plots`).

Dates follow the house rule: a period is drawn from its first day to the first day of
the next, so counts of entries during a period sit in the middle of it and a count of
people in a stage at the period's end sits at its end.

>>> import numpy as np, pandas as pd
>>> dates = pd.date_range("2026-01-05", periods=4, freq="7D")
>>> fig = plot_contributions(dates, "interest", np.full(4, 900.0),
...                         {"tv": np.array([50.0, 80.0, 60.0, -5.0])})
>>> [ax.get_title(loc="left") for ax in fig.axes]
['entries into interest per week', 'campaigns alone (their own scale)']
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, MaxNLocator

from funnelsim.report.plots import _BAND, _COLORS, _THOUSANDS, _date_axis, font_families

__all__ = [
    "series_label",
    "plot_fitted_counts",
    "plot_contributions",
    "plot_response_curves",
    "figure_png",
]

_WIDTH = 9.0  # inches: about 1,000 px at the report's 110 dpi
_OBSERVED = "#222222"
_BASELINE = "#B8B8B8"
_HOLDOUT = "#F2E6C9"
_PERIOD_WORDS = {1: "day", 7: "week"}


# ---------------------------------------------------------------- helpers
def _period_word(period_days: int) -> str:
    return _PERIOD_WORDS.get(period_days, f"{period_days}-day period")


def series_label(stage: str, kind: str, period_days: int) -> str:
    """The panel title of an observed series, in a planner's words.

    >>> series_label("interest", "entries", 7)
    'interest — entries per week'
    >>> series_label("conversion", "occupancy", 1)
    "conversion — people at day's end"
    """
    word = _period_word(period_days)
    if kind == "occupancy":
        return f"{stage} — people at {word}'s end"
    return f"{stage} — entries per {word}"


def _period_days(dates: pd.DatetimeIndex, given: int | None = None) -> int:
    """Length of the periods in days: ``given``, else the step between the first two
    dates (1 when there is a single period)."""
    if given is not None:
        if given < 1:
            raise ValueError(f"period_days must be at least 1, not {given}")
        return given
    if len(dates) < 2:
        return 1
    return max(1, round((dates[1] - dates[0]) / pd.Timedelta(days=1)))


def _edges(dates: pd.DatetimeIndex, period_days: int) -> np.ndarray:
    """The first day of each period, then the day after the last (T + 1 dates)."""
    starts = np.asarray(dates.values).astype("datetime64[D]")
    return np.append(starts, starts[-1] + np.timedelta64(period_days, "D"))


def _middles(edges: np.ndarray) -> np.ndarray:
    hours = edges.astype("datetime64[h]")
    return hours[:-1] + (hours[1:] - hours[:-1]) // 2


def _arrow(text: str) -> str:
    return text.replace(" -> ", " → ")


def _number(v: float, _: object = None) -> str:
    """Thousands separators; a few significant digits for small values."""
    if v == 0 or abs(v) >= 10 or v == round(v):
        return f"{v:,.0f}"
    return f"{v:,.3g}"


def _step(values: np.ndarray) -> np.ndarray:
    """Per-period values repeated at the last edge, for ``step="post"`` drawing."""
    return np.append(values, values[-1])


@contextmanager
def _style(texts: Iterable[str]) -> Iterator[None]:
    """Texts made inside get fonts with the glyphs of ``texts`` (fixed at creation)."""
    with matplotlib.rc_context({"font.family": font_families(texts)}):
        yield


def figure_png(fig: Figure, dpi: int = 110) -> bytes:
    """``fig`` as PNG bytes (tight bounding box) for an HTML report. Characters that no
    installed font has are drawn as boxes without matplotlib's missing-glyph warnings
    (the fonts were chosen when the figure was made).

    >>> import numpy as np
    >>> s = np.linspace(0, 10, 5)
    >>> png = figure_png(plot_response_curves({"tv": dict(spend=s, mean=s, lo=s, hi=s,
    ...     target="arrivals")}))
    >>> png[:4]
    b'\\x89PNG'
    """
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from", category=UserWarning)
        warnings.filterwarnings("ignore", message=r"Matplotlib currently does not support")
        fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()


def _check(name: str, array: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    array = np.asarray(array, dtype=float)
    if array.shape != shape:
        raise ValueError(f"{name} has shape {array.shape}, expected {shape}")
    return array


def _grid(n: int, most_cols: int) -> tuple[int, int]:
    cols = min(n, most_cols)
    return -(-n // cols), cols


def _hide_spare(axes: np.ndarray, used: int) -> None:
    for ax in axes[used:]:
        ax.set_visible(False)


# ---------------------------------------------------------------- fitted vs observed
def _shade_holdout(ax: Axes, edges: np.ndarray, start: int) -> None:
    ax.axvspan(edges[start], edges[-1], color=_HOLDOUT, alpha=0.8, lw=0, zorder=0, gid="holdout")
    ax.axvline(edges[start], color="#9C7A2B", lw=1, ls="--", zorder=1, gid="holdout start")
    ax.text(
        edges[start],
        0.98,
        " holdout\n (not fitted)",
        transform=ax.get_xaxis_transform(),
        va="top",
        ha="left",
        fontsize=7,
        color="#6B5418",
    )


def plot_fitted_counts(
    dates: pd.DatetimeIndex,
    labels: Sequence[str],
    observed: np.ndarray,
    mean: np.ndarray,
    lo50: np.ndarray,
    hi50: np.ndarray,
    lo90: np.ndarray,
    hi90: np.ndarray,
    holdout_start: int | None = None,
    *,
    kinds: Sequence[str] | None = None,
    period_days: int | None = None,
    title: str | None = None,
) -> Figure:
    """Observed counts against the model's posterior predictive, one panel per series.

    Arrays are ``(T, N)``: ``T`` periods starting on ``dates``, ``N`` observed series
    titled by ``labels`` (see :func:`series_label`). Each panel has the data as dots
    (missing values, NaN, are left out), the predictive mean as a line and the 50% and
    90% predictive bands; from period ``holdout_start`` on, a shaded region marks the
    periods the model was not fitted to. ``kinds`` (``"entries"`` or ``"occupancy"``
    per series, entries by default) places entries in the middle of their period and
    people in a stage at its end. ``period_days`` defaults to the step between the
    first two dates.

    >>> import numpy as np, pandas as pd
    >>> dates = pd.date_range("2026-01-05", periods=6, freq="7D")
    >>> m = np.full((6, 1), 100.0)
    >>> fig = plot_fitted_counts(dates, ["interest — entries per week"], m + 3, m,
    ...                          m - 10, m + 10, m - 25, m + 25, holdout_start=4)
    >>> fig.axes[0].get_title(loc="left")
    'interest — entries per week'
    """
    observed = np.asarray(observed, dtype=float)
    if observed.ndim != 2:
        raise ValueError(f"observed has shape {observed.shape}, expected (periods, series)")
    n_t, n = observed.shape
    if len(dates) != n_t or len(labels) != n:
        raise ValueError(f"{len(dates)} dates and {len(labels)} labels for {observed.shape}")
    mean, lo50, hi50, lo90, hi90 = (
        _check(name, a, (n_t, n))
        for name, a in zip(("mean", "lo50", "hi50", "lo90", "hi90"), (mean, lo50, hi50, lo90, hi90))
    )
    kinds = list(kinds) if kinds is not None else ["entries"] * n
    if len(kinds) != n or not set(kinds) <= {"entries", "occupancy"}:
        raise ValueError(f"kinds {kinds} must be 'entries' or 'occupancy' for each of {n} series")
    if holdout_start is not None and not 0 < holdout_start <= n_t:
        raise ValueError(f"holdout_start {holdout_start} is not a period in 1..{n_t}")
    held = holdout_start is not None and holdout_start < n_t
    edges = _edges(dates, _period_days(dates, period_days))
    middles = _middles(edges)
    rows, cols = _grid(n, 2)
    with _style([*labels, title or ""]):
        fig = Figure(figsize=(_WIDTH, 2.5 * rows + 0.9), layout="constrained")
        axes = fig.subplots(rows, cols, squeeze=False, sharex=True).ravel()
        for k, ax in enumerate(axes[:n]):
            x = edges[1:] if kinds[k] == "occupancy" else middles
            if held:
                assert holdout_start is not None
                _shade_holdout(ax, edges, holdout_start)
            ax.fill_between(x, lo90[:, k], hi90[:, k], color=_BAND, alpha=0.18, lw=0, gid="90%")
            ax.fill_between(x, lo50[:, k], hi50[:, k], color=_BAND, alpha=0.38, lw=0, gid="50%")
            ax.plot(x, mean[:, k], color=_BAND, lw=1.3, gid="mean")
            ax.plot(
                x,
                observed[:, k],
                "o",
                color=_OBSERVED,
                ms=3.5 if n_t <= 60 else 2.8 if n_t <= 150 else 1.8,
                gid="observed",
            )
            ax.set_title(labels[k], fontsize=9, loc="left")
            ax.yaxis.set_major_formatter(_THOUSANDS)
            ax.tick_params(axis="y", labelsize=8)
            ax.set_ylim(bottom=0)
            ax.spines[["top", "right"]].set_visible(False)
            _date_axis(ax, edges, most=5 if cols > 1 else 8)
        _hide_spare(axes, n)
        for ax in axes[n - cols : n]:  # sharex hides labels on panels with one beneath
            ax.tick_params(axis="x", labelbottom=True)
        handles = [
            Line2D([], [], marker="o", ls="", color=_OBSERVED, ms=4, label="observed"),
            Line2D([], [], color=_BAND, lw=1.3, label="model: predicted mean"),
            Patch(color=_BAND, alpha=0.38, lw=0, label="50% of predicted counts"),
            Patch(color=_BAND, alpha=0.18, lw=0, label="90% of predicted counts"),
        ]
        if held:
            handles.append(Patch(color=_HOLDOUT, lw=0, label="holdout (not fitted)"))
        fig.legend(
            handles=handles,
            loc="outside lower center",
            ncols=len(handles),
            fontsize=8,
            frameon=False,
        )
        fig.suptitle(
            title or "Observed counts and what the fitted model predicts for them", fontsize=11
        )
    return fig


# ---------------------------------------------------------------- contributions
def _stack(ax: Axes, edges: np.ndarray, layers: list[tuple[str, str, np.ndarray, str]]) -> bool:
    """Stack each layer's positive part above zero and its negative part below, period by
    period; return whether anything is negative. Layers are ``(name, legend label,
    values, colour)``; areas are tagged (``gid``) with the name, and "NAME below zero"
    for negative parts."""
    up = np.zeros(len(edges) - 1)
    down = np.zeros(len(edges) - 1)
    negative = False
    for name, label, values, color in layers:
        pos, neg = np.clip(values, 0, None), np.clip(values, None, 0)
        ax.fill_between(
            edges, _step(up), _step(up + pos), step="post", color=color, lw=0, label=label, gid=name
        )
        if (neg < 0).any():
            negative = True
            ax.fill_between(
                edges,
                _step(down + neg),
                _step(down),
                step="post",
                facecolor=color,
                edgecolor="white",
                alpha=0.75,
                lw=0,
                hatch="////",
                gid=f"{name} below zero",
            )
        up, down = up + pos, down + neg
    if negative:
        ax.axhline(0.0, color="#333333", lw=0.8)
    return negative


def plot_contributions(
    dates: pd.DatetimeIndex,
    stage: str,
    baseline: np.ndarray,
    contributions: Mapping[str, np.ndarray],
    observed: np.ndarray | None = None,
    *,
    period_days: int | None = None,
    title: str | None = None,
) -> Figure:
    """Entries into ``stage`` per period, split into the baseline (no campaign running)
    and each campaign's contribution, as stacked areas; the observed entries as dots.

    A campaign's contribution may be negative in some periods (the difference of two
    predictions): the negative part is drawn below zero, hatched, not hidden. A second
    panel shows the campaigns alone on their own scale, since the baseline usually
    dwarfs them. Legend entries give each part's total over the periods drawn.
    ``period_days`` defaults to the step between the first two dates.
    """
    baseline = np.asarray(baseline, dtype=float)
    n_t = baseline.shape[0]
    if baseline.shape != (n_t,) or len(dates) != n_t:
        raise ValueError(f"baseline has shape {baseline.shape} for {len(dates)} dates")
    parts = {c: _check(f"contribution of {c}", v, (n_t,)) for c, v in contributions.items()}
    days = _period_days(dates, period_days)
    period, edges = _period_word(days), _edges(dates, days)
    colors = {c: _COLORS[(k + 1) % len(_COLORS)] for k, c in enumerate(parts)}
    with _style([stage, *parts, title or ""]):
        fig = Figure(figsize=(_WIDTH, 5.6 if parts else 3.4), layout="constrained")
        if parts:
            top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[2.0, 1.2])
            axes = [top, bottom]
        else:
            top = fig.subplots()
            axes = [top]
        layers = [
            ("baseline", f"baseline ({np.nansum(baseline):,.0f} in total)", baseline, _BASELINE)
        ]
        layers += [(c, f"{c} ({np.nansum(v):+,.0f})", v, colors[c]) for c, v in parts.items()]
        negative = _stack(top, edges, layers)
        if negative:  # the top of the stack is then more than the model's total
            net = baseline + sum(parts.values(), np.zeros(n_t))
            top.step(
                edges, _step(net), where="post", color="#333", lw=0.9, label="net total", gid="net"
            )
        if observed is not None:
            obs = _check("observed", observed, (n_t,))
            top.plot(
                _middles(edges),
                obs,
                "o",
                color=_OBSERVED,
                ms=2.8,
                label="observed entries",
                gid="observed",
            )
        top.set_title(f"entries into {stage} per {period}", fontsize=9, loc="left")
        if parts:
            negative |= _stack(bottom, edges, [(c, c, v, colors[c]) for c, v in parts.items()])
            bottom.set_title("campaigns alone (their own scale)", fontsize=9, loc="left")
            bottom.set_ylabel(f"entries per {period}", fontsize=8)
        top.set_ylabel(f"entries per {period}", fontsize=8)
        if not negative:
            top.set_ylim(bottom=0)
        for ax in axes:
            ax.yaxis.set_major_formatter(_THOUSANDS)
            ax.tick_params(axis="y", labelsize=8)
            ax.spines[["top", "right"]].set_visible(False)
            _date_axis(ax, edges)
        handles, labels = top.get_legend_handles_labels()
        if negative:
            handles.append(Patch(facecolor="#999999", edgecolor="white", hatch="////", lw=0))
            labels.append("below zero (hatched):\na campaign's estimated\ncontribution is negative")
        top.legend(
            handles, labels, fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False
        )
        fig.suptitle(
            title or f"Where the entries into {stage} come from: baseline and campaigns",
            fontsize=11,
        )
    return fig


# ---------------------------------------------------------------- response curves
def _moves(target: str) -> str:
    """What a campaign's curve measures: "% more awareness → interest moves"."""
    if "->" in target:
        return f"% more {_arrow(target)} moves"
    return f"% more {target}"


def plot_response_curves(
    curves: Mapping[str, Mapping[str, Any]], *, title: str | None = None
) -> Figure:
    """One panel per campaign: the steady-state % change of what it moves against daily
    spend, with the daily spend actually used in the history marked.

    ``curves[c]`` holds ``spend`` (a daily spend grid), ``mean``, ``lo`` and ``hi`` (the
    % change: posterior mean and 94% interval), ``target`` ("awareness -> interest" or
    "arrivals"), ``used`` (daily spend in the history's periods with spend, drawn as a
    rug) and ``half_saturation`` (posterior median, a dashed line). Spend beyond the
    most the history used is shaded: there the curve rests on the model's form and
    priors, not on data.

    >>> import numpy as np
    >>> s = np.linspace(0, 2000, 50)
    >>> fig = plot_response_curves({"social": dict(spend=s, mean=20 * s / (s + 500),
    ...     lo=15 * s / (s + 500), hi=26 * s / (s + 500), target="awareness -> interest",
    ...     used=[300.0, 450.0, 800.0], half_saturation=500.0)})
    >>> fig.axes[0].get_ylabel()
    '% more awareness → interest moves'
    """
    names = list(curves)
    if not names:
        raise ValueError("no response curves to draw")
    rows, cols = _grid(len(names), 3)
    texts = [*names, *(_arrow(str(curves[c].get("target", ""))) for c in names), title or ""]
    with _style(texts):
        width = _WIDTH if cols > 1 else 6.0
        fig = Figure(figsize=(width, 2.9 * rows + 0.9), layout="constrained")
        axes = fig.subplots(rows, cols, squeeze=False).ravel()
        for k, (ax, name) in enumerate(zip(axes, names)):
            _response_panel(ax, name, curves[name], _COLORS[(k + 1) % len(_COLORS)], cols)
        _hide_spare(axes, len(names))
        handles = [
            Line2D([], [], color="#444444", lw=1.6, label="posterior mean"),
            Patch(color="#444444", alpha=0.2, lw=0, label="94% interval"),
            Line2D(
                [], [], color="#444444", marker="|", ls="", ms=9, label="daily spend in the history"
            ),
            Line2D([], [], color="#444444", ls="--", lw=1, label="half-saturation (daily spend)"),
            Patch(color="#000000", alpha=0.06, lw=0, label="beyond the spend seen"),
        ]
        fig.legend(
            handles=handles,
            loc="outside lower center",
            ncols=5 if cols > 1 else 3,
            fontsize=8,
            frameon=False,
        )
        fig.suptitle(
            title or "Response to spend: % change once a daily spend is kept up (steady state)",
            fontsize=11,
        )
    return fig


def _response_panel(ax: Axes, name: str, curve: Mapping[str, Any], color: str, cols: int) -> None:
    spend = np.asarray(curve["spend"], dtype=float)
    mean, lo, hi = (
        _check(f"{key} of {name}", curve[key], spend.shape) for key in ("mean", "lo", "hi")
    )
    used = np.asarray(curve.get("used", ()), dtype=float)
    used = used[np.isfinite(used)]
    right = float(spend.max())
    if used.size and used.max() < right:
        ax.axvspan(float(used.max()), right, color="#000000", alpha=0.06, lw=0, gid="beyond")
    ax.fill_between(spend, lo, hi, color=color, alpha=0.25, lw=0, gid="interval")
    ax.plot(spend, mean, color=color, lw=1.6, gid="mean")
    if used.size:
        ax.plot(
            used,
            np.zeros_like(used),
            "|",
            color="#333333",
            ms=9,
            alpha=0.6,
            transform=ax.get_xaxis_transform(),
            clip_on=False,
            gid="used",
        )
    half = curve.get("half_saturation")
    if half is not None and np.isfinite(half) and spend.min() <= half <= right:
        ax.axvline(float(half), color=color, ls="--", lw=1, gid="half-saturation")
        left = half < spend.min() + 0.6 * (right - spend.min())
        text = f"half-saturation\n{_number(float(half))}/day"
        ax.annotate(
            text,
            xy=(float(half), 0.97),
            xycoords=ax.get_xaxis_transform(),
            xytext=(3 if left else -3, 0),
            textcoords="offset points",
            fontsize=7,
            va="top",
            ha="left" if left else "right",
            multialignment="left" if left else "right",
        )
    ax.set_xlim(float(spend.min()), right)
    ax.set_ylim(bottom=min(0.0, float(np.nanmin(lo))))
    ax.set_title(f"{name}: {_arrow(str(curve.get('target', '')))}", fontsize=9, loc="left")
    ax.set_xlabel("spend per day", fontsize=8)
    ax.set_ylabel(_moves(str(curve.get("target", ""))), fontsize=8)
    ax.xaxis.set_major_locator(MaxNLocator(nbins=4 if cols > 2 else 6, steps=[1, 2, 2.5, 5, 10]))
    ax.xaxis.set_major_formatter(FuncFormatter(_number))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{_number(v)}%"))
    ax.tick_params(labelsize=8)
    ax.spines[["top", "right"]].set_visible(False)
