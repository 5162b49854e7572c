"""The parts of ``FIT.report.html`` only a fit of aggregate counts has: fitted against
observed counts (and the holdout check), what each campaign brought, response curves,
and what the counts can and cannot pin down."""

from __future__ import annotations

import base64
import html

import pandas as pd

from funnelsim.inference.count_fit import (
    contributions,
    contributions_over_time,
    count_design,
    fitted_bands,
    holdout_check,
    identifiability,
    response_curves,
)
from funnelsim.inference.fitted import HDI_PROB, FittedFunnel
from funnelsim.report.count_plots import (
    figure_png,
    plot_contributions,
    plot_fitted_counts,
    plot_response_curves,
    series_label,
)

__all__ = ["count_sections"]


def _esc(value: object) -> str:
    return html.escape(str(value))


def _img(fig: object, alt: str, caption: str) -> str:
    data = base64.b64encode(figure_png(fig)).decode("ascii")  # type: ignore[arg-type]
    return (
        f"<figure><img alt='{_esc(alt)}' src='data:image/png;base64,{data}'>"
        f"<figcaption>{caption}</figcaption></figure>"
    )


def _table(frame: pd.DataFrame, formats: dict[str, str]) -> str:
    head = "".join(f"<th>{_esc(c)}</th>" for c in frame.columns)
    rows = []
    for rec in frame.itertuples(index=False):
        cells = []
        for col, value in zip(frame.columns, rec):
            text = format(value, formats[col]) if col in formats else str(value)
            align = " class='num'" if col in formats else ""
            cells.append(f"<td{align}>{_esc(text)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def count_sections(fit: FittedFunnel) -> list[str]:
    """HTML fragments for a counts fit, in reading order."""
    grid, _, series = count_design(fit)
    word = "week" if grid.period_days == 7 else "day" if grid.period_days == 1 else "period"
    parts: list[str] = []
    # --- does the model reproduce the counts?
    bands = fitted_bands(fit)
    labels = [series_label(s, k, grid.period_days) for s, k in series]
    fig = plot_fitted_counts(
        bands["dates"], labels, bands["observed"], bands["mean"], bands["lo50"],
        bands["hi50"], bands["lo90"], bands["hi90"], bands["holdout_start"],
        kinds=[k for _, k in series], period_days=grid.period_days,
    )  # fmt: skip
    parts.append("<h2>Does the model reproduce the counts?</h2>")
    held = holdout_check(fit)
    caption = (
        "Dots: the counts in the data. Line: the fitted model's expected count; bands: where "
        f"50% and 90% of counts fall in data sets simulated from the posterior. A {word} whose "
        "dot lies outside the 90% band is one the model does not explain."
    )
    if len(held):
        caption += (
            f" The shaded {word}s at the end were held out: the model never saw them, so there "
            "the bands are a forecast."
        )
    parts.append(_img(fig, "fitted counts", caption))
    if len(held):
        parts.append(f"<h3>Holdout check: the last {int(held['periods'].iloc[0])} {word}s</h3>")
        shown = held.assign(
            series=[series_label(s, k, grid.period_days) for s, k in zip(held.stage, held.kind)],
            error=held["mean_abs_pct_error"] / 100.0,
        )[["series", "error", "coverage_90"]].rename(
            columns={
                "error": "mean abs error of the forecast",
                "coverage_90": "held-out counts inside the 90% interval",
            }
        )
        parts.append(
            _table(
                shown,
                {
                    "mean abs error of the forecast": ".1%",
                    "held-out counts inside the 90% interval": ".0%",
                },
            )
        )
        parts.append(
            "<p class='note'>The fit was made without these periods and forecast them from "
            "the spend that ran. About 90% of held-out counts should fall inside the 90% "
            "interval; far fewer means the forecast is overconfident.</p>"
        )
    # --- contributions
    if grid.campaigns:
        table = contributions(fit)
        goal = fit.goal
        parts.append(f"<h2>What each campaign brought: entries into {_esc(goal)}</h2>")
        mine = table[table["stage"] == goal].drop(columns="stage")
        low, high = f"{HDI_PROB:.0%} low", f"{HDI_PROB:.0%} high"
        mine = mine.rename(
            columns={
                "contribution_mean": f"extra {goal} (mean)",
                "contribution_hdi_low": low,
                "contribution_hdi_high": high,
            }
        )
        parts.append(_table(mine, {f"extra {goal} (mean)": ",.0f", low: ",.0f", high: ",.0f"}))
        baseline, parts_t = contributions_over_time(fit)
        observed = None
        if (goal, "entries") in series:
            observed = bands["observed"][: grid.n_periods, series.index((goal, "entries"))]
        fig = plot_contributions(
            grid.dates, goal, baseline, parts_t, observed, period_days=grid.period_days
        )
        parts.append(
            _img(
                fig,
                "contributions",
                f"Entries into {_esc(goal)} per {word} as the fitted model explains them: the "
                "baseline (no campaign running) and, stacked on it, what each campaign added "
                "— the fitted model with the campaign switched off, the difference averaged "
                f"over posterior draws. The table's totals over the history carry {HDI_PROB:.0%} "
                "credible intervals; contributions to every stage are in FIT.contributions.csv.",
            )
        )
        curves = response_curves(fit)
        fig = plot_response_curves(curves)
        parts.append("<h2>Response curves: what more spend would do</h2>")
        parts.append(
            _img(
                fig,
                "response curves",
                "For a steady daily spend (x), how much faster the move each campaign targets "
                "becomes once its carryover has built up (y, % over no campaign), with the "
                f"{HDI_PROB:.0%} credible band. Ticks mark the daily spend levels the history "
                "used; the curve beyond the largest of them rests on the saturation shape and "
                "the priors, not on data.",
            )
        )
    # --- identifiability
    table, pairs = identifiability(fit)
    parts.append("<h2>What the counts pin down</h2>")
    parts.append(
        "<p class='note'>How much the data shrank each parameter's prior uncertainty "
        "(1 − posterior variance / prior variance): <b>pinned</b> ≥ 90%, <b>weak</b> below "
        "50% — a weak parameter is mostly its prior, and the hint says what data would "
        "pin it down.</p>"
    )
    shown = table.assign(contraction=table["contraction"].clip(lower=0.0))
    parts.append(_table(shown, {"contraction": ".0%"}))
    if len(pairs):
        parts.append(
            "<p class='note'>Pairs the data cannot separate (posterior correlation beyond "
            "±0.7): the counts fix a combination of the two, not each one.</p>"
        )
        parts.append(_table(pairs.head(10), {"correlation": "+.2f"}))
    return parts
