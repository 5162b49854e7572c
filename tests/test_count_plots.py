"""Plots of a count fit draw exactly the arrays they are given, headless, and say what a
planner would otherwise misread: which periods were not fitted, which contributions are
negative, which spend the history never used."""

from __future__ import annotations

import doctest
import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from funnelsim.report import count_plots  # noqa: E402
from funnelsim.report.count_plots import (  # noqa: E402
    figure_png,
    plot_contributions,
    plot_fitted_counts,
    plot_response_curves,
    series_label,
)

T = 20
DATES = pd.date_range("2026-01-05", periods=T, freq="7D")
SERIES = [("awareness", "entries"), ("interest", "entries"), ("conversion", "occupancy")]
LABELS = [series_label(stage, kind, 7) for stage, kind in SERIES]


def _bands(n: int = len(SERIES)) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    mean = np.linspace(1_000, 2_000, T)[:, None] * np.arange(1, n + 1)
    observed = rng.poisson(mean).astype(float)
    return {
        "observed": observed,
        "mean": mean,
        "lo50": mean * 0.95,
        "hi50": mean * 1.05,
        "lo90": mean * 0.9,
        "hi90": mean * 1.1,
    }


def _width_px(png: bytes) -> int:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(png[16:20], "big")


def _visible(fig: Figure) -> list:
    return [ax for ax in fig.axes if ax.get_visible()]


def _ys(collection) -> np.ndarray:
    return np.concatenate([p.vertices[:, 1] for p in collection.get_paths()])


def _one(ax, gid: str):
    """The artist a plot tagged ``gid``."""
    found = [a for a in [*ax.lines, *ax.collections, *ax.patches] if a.get_gid() == gid]
    assert len(found) == 1, (gid, len(found))
    return found[0]


def _gids(ax) -> set[str]:
    return {a.get_gid() for a in [*ax.lines, *ax.collections, *ax.patches] if a.get_gid()}


def _xs_as_dates(line) -> np.ndarray:
    return np.asarray(mdates.num2date(mdates.date2num(line.get_xdata())))


@pytest.fixture(autouse=True)
def _no_pyplot_figures_left():
    """The functions build Figures without pyplot: nothing stays open between tests."""
    yield
    assert plt.get_fignums() == []


def test_series_labels_speak_of_entries_and_people():
    assert series_label("interest", "entries", 7) == "interest — entries per week"
    assert series_label("conversion", "occupancy", 7) == "conversion — people at week's end"
    assert series_label("desire", "entries", 1) == "desire — entries per day"


def test_fitted_counts_one_panel_per_series_with_data_and_bands():
    b = _bands()
    fig = plot_fitted_counts(DATES, LABELS, **b, kinds=[k for _, k in SERIES])
    panels = _visible(fig)
    assert [ax.get_title(loc="left") for ax in panels] == LABELS
    for k, ax in enumerate(panels):
        assert _gids(ax) == {"observed", "mean", "50%", "90%"}
        assert np.array_equal(_one(ax, "observed").get_ydata(), b["observed"][:, k])
        assert np.array_equal(_one(ax, "mean").get_ydata(), b["mean"][:, k])
        outer, inner = _one(ax, "90%"), _one(ax, "50%")
        assert outer.zorder <= inner.zorder and ax.collections.index(outer) == 0
        assert _ys(outer).min() == pytest.approx(b["lo90"][:, k].min())
        assert _ys(outer).max() == pytest.approx(b["hi90"][:, k].max())
        assert _ys(inner).max() == pytest.approx(b["hi50"][:, k].max())
        assert ax.get_ylim()[0] == 0
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == [
        "observed",
        "model: predicted mean",
        "50% of predicted counts",
        "90% of predicted counts",
    ]
    assert _width_px(figure_png(fig)) == pytest.approx(1000, abs=60)


def test_entries_sit_mid_period_and_people_at_the_period_end():
    fig = plot_fitted_counts(DATES, LABELS, **_bands(), kinds=[k for _, k in SERIES])
    entries, people = (_one(_visible(fig)[k], "observed") for k in (0, 2))
    first_entries, first_people = _xs_as_dates(entries)[0], _xs_as_dates(people)[0]
    assert first_entries.replace(tzinfo=None) == pd.Timestamp("2026-01-08 12:00")
    assert first_people.replace(tzinfo=None) == pd.Timestamp("2026-01-12")


def test_fitted_counts_shade_the_holdout_from_its_first_period_to_the_end():
    fig = plot_fitted_counts(DATES, LABELS, **_bands(), holdout_start=16)
    for ax in _visible(fig):
        shaded = _one(ax, "holdout")
        x0, x1 = shaded.get_x(), shaded.get_x() + shaded.get_width()
        assert mdates.num2date(x0).date() == DATES[16].date()
        assert mdates.num2date(x1).date() == (DATES[-1] + pd.Timedelta(days=7)).date()
        assert any("holdout" in t.get_text() and "not fitted" in t.get_text() for t in ax.texts)
        assert ax.get_xlim()[1] == pytest.approx(x1)
    assert "holdout (not fitted)" in [t.get_text() for t in fig.legends[0].get_texts()]
    without = plot_fitted_counts(DATES, LABELS, **_bands())
    assert all("holdout" not in _gids(ax) and not ax.texts for ax in _visible(without))


def test_fitted_counts_leave_missing_observations_out_and_still_render():
    b = _bands(1)
    b["observed"][3:6, 0] = np.nan
    fig = plot_fitted_counts(DATES, LABELS[:1], **b, holdout_start=T - 2)
    (ax,) = _visible(fig)
    dots = _one(ax, "observed").get_ydata()
    assert np.isnan(dots[3:6]).all() and np.isfinite(np.delete(dots, [3, 4, 5])).all()
    assert len(fig.axes) == 1 and ax.get_title(loc="left") == LABELS[0]
    figure_png(fig)


def test_fitted_counts_refuse_arrays_that_do_not_match():
    b = _bands()
    b["hi90"] = b["hi90"][:-1]
    with pytest.raises(ValueError, match="hi90"):
        plot_fitted_counts(DATES, LABELS, **b)
    with pytest.raises(ValueError, match="labels"):
        plot_fitted_counts(DATES, LABELS[:2], **_bands())
    with pytest.raises(ValueError, match="holdout_start"):
        plot_fitted_counts(DATES, LABELS, **_bands(), holdout_start=T + 1)
    with pytest.raises(ValueError, match="kinds"):
        plot_fitted_counts(DATES, LABELS, **_bands(), kinds=["entries", "stock", "entries"])


def test_a_single_weekly_period_is_drawn_a_week_long_when_told():
    b = {k: v[:1, :1] for k, v in _bands(1).items()}
    label = series_label("interest", "entries", 7)
    ax = plot_fitted_counts(DATES[:1], [label], **b, period_days=7).axes[0]
    start, end = (d.date() for d in mdates.num2date(ax.get_xlim()))
    assert (start, end) == (DATES[0].date(), (DATES[0] + pd.Timedelta(days=7)).date())
    fig = plot_contributions(DATES[:1], "interest", np.ones(1), {}, period_days=7)
    assert fig.axes[0].get_title(loc="left") == "entries into interest per week"


def test_contributions_stack_on_the_baseline_and_negatives_go_below_zero():
    baseline = np.full(T, 1_000.0)
    tv = np.where(np.arange(T) < 8, 200.0, 0.0)
    social = np.linspace(-30.0, 60.0, T)
    observed = baseline + tv + social + 5
    fig = plot_contributions(DATES, "interest", baseline, {"tv": tv, "social": social}, observed)
    top, bottom = fig.axes
    assert top.get_title(loc="left") == "entries into interest per week"
    assert bottom.get_title(loc="left") == "campaigns alone (their own scale)"
    # top: baseline, tv, social above zero, then social's negative part below
    assert _ys(_one(top, "baseline")).max() == pytest.approx(1_000)
    assert _ys(_one(top, "tv")).max() == pytest.approx(1_200)
    assert _ys(_one(top, "social")).max() == pytest.approx(
        (baseline + tv + np.clip(social, 0, None)).max()
    )
    assert _ys(_one(top, "social")).min() == pytest.approx(1_000)  # on top of tv, or baseline
    below = _one(top, "social below zero")
    assert _ys(below).min() == pytest.approx(social.min()) and _ys(below).max() == 0
    assert below.get_hatch() == "////"
    assert "tv below zero" not in _gids(top)
    assert top.get_ylim()[0] < social.min()
    # the net total is drawn when negatives make the stack's top exceed it
    net, dots = _one(top, "net"), _one(top, "observed")
    assert np.allclose(net.get_ydata()[:-1], baseline + tv + social)
    assert np.array_equal(dots.get_ydata(), observed)
    legend = [t.get_text() for t in top.get_legend().get_texts()]
    assert legend[:3] == ["baseline (20,000 in total)", "tv (+1,600)", "social (+300)"]
    assert "net total" in legend and "observed entries" in legend
    assert any("negative" in text for text in legend)
    # bottom: the campaigns alone, the same negative part below zero
    assert _ys(_one(bottom, "tv")).max() == pytest.approx(200)
    assert _ys(_one(bottom, "tv")).min() == 0
    assert _ys(_one(bottom, "social below zero")).min() == pytest.approx(social.min())
    figure_png(fig)


def test_contributions_of_one_campaign_without_negatives_or_observations():
    fig = plot_contributions(DATES, "desire", np.full(T, 500.0), {"coupons": np.full(T, 40.0)})
    top, bottom = fig.axes
    assert _gids(top) == {"baseline", "coupons"} and _gids(bottom) == {"coupons"}
    assert top.get_ylim()[0] == 0  # no negative part, no net line, no observed dots
    assert [t.get_text() for t in top.get_legend().get_texts()] == [
        "baseline (10,000 in total)",
        "coupons (+800)",
    ]
    assert len(plot_contributions(DATES, "desire", np.full(T, 500.0), {}).axes) == 1
    with pytest.raises(ValueError, match="coupons"):
        plot_contributions(DATES, "desire", np.full(T, 500.0), {"coupons": np.zeros(T - 1)})


def _curve(target: str, top: float, half: float, used: list[float]) -> dict:
    spend = np.linspace(0.0, 4 * half, 60)
    shape = spend / (spend + half)
    return {
        "spend": spend,
        "mean": top * shape,
        "lo": 0.6 * top * shape,
        "hi": 1.5 * top * shape,
        "target": target,
        "used": np.array(used),
        "half_saturation": half,
    }


def test_response_curves_one_panel_per_campaign_in_planner_words():
    curves = {
        "tv": _curve("arrivals", 25.0, 900.0, [200.0, 800.0, 1_500.0]),
        "social": _curve("awareness -> interest", 12.0, 150.0, [40.0, 90.0, np.nan]),
        "coupons": _curve("desire -> conversion", 8.0, 200.0, [20.0, 50.0]),
    }
    fig = plot_response_curves(curves)
    panels = _visible(fig)
    assert [ax.get_title(loc="left") for ax in panels] == [
        "tv: arrivals",
        "social: awareness → interest",
        "coupons: desire → conversion",
    ]
    assert [ax.get_ylabel() for ax in panels] == [
        "% more arrivals",
        "% more awareness → interest moves",
        "% more desire → conversion moves",
    ]
    assert {ax.get_xlabel() for ax in panels} == {"spend per day"}
    for ax, curve in zip(panels, curves.values()):
        beyond = _one(ax, "beyond")  # spend past the most the history used
        used = curve["used"][np.isfinite(curve["used"])]
        assert beyond.get_x() == pytest.approx(used.max())
        assert beyond.get_x() + beyond.get_width() == pytest.approx(curve["spend"][-1])
        mean, rug, half = (_one(ax, gid) for gid in ("mean", "used", "half-saturation"))
        assert np.array_equal(mean.get_ydata(), curve["mean"])
        assert np.array_equal(rug.get_xdata(), used)
        assert half.get_linestyle() == "--"
        assert half.get_xdata()[0] == pytest.approx(curve["half_saturation"])
        assert any(f"{curve['half_saturation']:,.0f}/day" in t.get_text() for t in ax.texts)
        assert _ys(_one(ax, "interval")).max() == pytest.approx(curve["hi"].max())
        assert _ys(_one(ax, "interval")).min() == pytest.approx(curve["lo"].min())
    assert panels[0].yaxis.get_major_formatter()(10.0, 0) == "10%"
    assert panels[0].xaxis.get_major_formatter()(2_500.0, 0) == "2,500"
    assert _width_px(figure_png(fig)) == pytest.approx(1000, abs=60)


def test_response_curve_of_one_campaign_with_negative_interval_and_no_half_saturation():
    curve = _curve("desire -> conversion", 5.0, 300.0, [2_000.0])  # used beyond the grid
    curve["lo"] = curve["lo"] - 3.0
    curve["half_saturation"] = None
    fig = plot_response_curves({"coupons": curve})
    (ax,) = fig.axes
    assert _gids(ax) == {"mean", "interval", "used"}  # nothing beyond, no half-saturation
    assert not ax.texts
    assert ax.get_ylim()[0] <= curve["lo"].min()
    figure_png(fig)
    with pytest.raises(ValueError, match="no response curves"):
        plot_response_curves({})
    curve["hi"] = curve["hi"][:-1]
    with pytest.raises(ValueError, match="hi of coupons"):
        plot_response_curves({"coupons": curve})


def test_names_are_drawn_in_the_fonts_that_have_their_glyphs(monkeypatch):
    asked = []

    def families(texts):
        asked.extend(texts)
        return ["DejaVu Sans", "Liberation Sans"]

    monkeypatch.setattr(count_plots, "font_families", families)
    fig = plot_contributions(DATES, "интерес", np.full(T, 10.0), {"广告": np.ones(T)})
    assert "интерес" in asked and "广告" in asked
    for text in (fig.axes[0].title, fig.axes[0].get_legend().get_texts()[1]):
        assert text.get_fontfamily() == ["DejaVu Sans", "Liberation Sans"]
    fig = plot_response_curves({"社交": _curve("認知 -> 興味", 5.0, 100.0, [50.0])})
    assert "社交" in asked and "認知 → 興味" in asked


def test_names_no_installed_font_has_render_without_warnings():
    """CJK glyphs are missing on machines without a CJK font: boxes, and no warning."""
    fig = plot_fitted_counts(DATES, ["認知 — entries per week"], **_bands(1))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        png = figure_png(fig)
    assert [str(w.message) for w in caught] == []
    assert _width_px(png) == pytest.approx(1000, abs=60)


def test_docstring_examples():
    result = doctest.testmod(count_plots, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
