"""``report.html``: one self-contained page (tables and plots inlined), readable offline,
written for a planner to hand to a manager: the scenario's description, the plans
compared in plain words, readable metric names, money in the scenario's currency,
percentages as percentages, and a caption under each plot saying how to read it."""

from __future__ import annotations

import base64
import html
from pathlib import Path

import pandas as pd

from funnelsim import __version__
from funnelsim.report.console import Run, best_plan, how_sure, run_info
from funnelsim.report.format import ECONOMIC_METRICS, is_percent, metric_name, money_unit
from funnelsim.results import SimulationResult

__all__ = ["PLOT_CAPTIONS", "write_report"]

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 72rem; color: #222;
       padding: 0 1rem; line-height: 1.45; }
h1 { font-size: 1.6rem; margin-bottom: 0.3rem; } h2 { font-size: 1.2rem; margin-top: 2.2rem; }
.lead { font-size: 1.05rem; max-width: 48rem; }
.verdict { font-size: 1.05rem; padding: 0.5rem 0.8rem; background: #f3f7f3;
           border-left: 4px solid #4caf50; max-width: 48rem; }
table { border-collapse: collapse; margin: 0.5rem 0; font-size: 0.9rem; }
th, td { padding: 0.3rem 0.7rem; border-bottom: 1px solid #ddd; text-align: right;
         vertical-align: top; }
th { font-weight: 600; border-bottom: 2px solid #999; }
th:first-child, td:first-child, td.text, th.text { text-align: left; }
td.group { font-weight: 600; }
table.split td:first-child, table.split th:first-child { width: 16rem; }
table.plans td:first-child { min-width: 14rem; }
.range { display: block; color: #777; font-size: 0.8rem; white-space: nowrap; }
.best { background: #e8f5e9; font-weight: 600; }
.note, figcaption { color: #555; font-size: 0.88rem; max-width: 52rem; }
figure { margin: 1rem 0 2rem 0; } img { max-width: 100%; }
"""

#: A heading and a caption for each standard plot, by file stem.
PLOT_CAPTIONS: dict[str, tuple[str, str]] = {
    "funnel": (
        "How far people get",
        "How many people entered each stage over the horizon, one bar per plan (mean "
        "across replicates): people there at the start, new arrivals and moves from other "
        "stages; repeat events are the paler extension. The label says where they came "
        'from, e.g. "30% of those leaving desire": of everyone who left desire, the '
        "share who moved on to this stage. Someone who goes back and forth counts at each "
        "entry.",
    ),
    "occupancy": (
        "People in each stage over time",
        "How many people are in each stage at the end of each period. With one plan, the "
        "line is the median across replicates, the dark band holds the middle half of them "
        "(25–75%) and the light band 90% (5–95%); with several plans, each plan has its "
        "median and its 5–95% band. The wider the band, the less certain the forecast.",
    ),
    "cumulative": (
        "Conversions adding up",
        "Conversions since the start of the horizon, one line per plan, with the 5–95% "
        "band across replicates. Where the lines part is when a plan starts to pay off; "
        "where the bands overlap, the plans cannot be told apart yet.",
    ),
    "dropoff": (
        "Where people leave",
        "How many people left the journey from each stage before converting, per plan, "
        "and how many customers left after converting. The tallest bars are where the "
        "journey leaks most, and where a campaign has most to win.",
    ),
    "uplift": (
        "Extra conversions of each variant",
        "For each variant, how its extra conversions over the baseline spread across "
        "replicates (each replicate compared with the baseline's replicate that saw the "
        "same random numbers). The part right of zero is the chance that the variant "
        "sells more; its width is how sure we are of the size of the gain.",
    ),
    "pressure": (
        "When the campaigns run",
        "One panel per campaign, with the plans that run it: its pressure day by day, from "
        "0 (no effect) to 1 (its full lift). A campaign without spend is at 1 inside its "
        "window; with spend, pressure builds up and fades with carryover and flattens with "
        "saturation. The bottom panel is the money spent so far by each plan.",
    ),
}

_GROUPS = {"existing": "already in the funnel at the start", "referral": "word of mouth"}


def _esc(value: object) -> str:
    return html.escape(str(value))


def _fmt(metric: str, value: float, currency: str) -> str:
    """One number of ``metric``: a percentage, money with its currency, days, or a count."""
    if pd.isna(value):
        return "–"
    if metric.startswith("prob_"):
        return f"{value:.0%}"
    if is_percent(metric):
        pct = 100 * value
        return f"{pct:,.1f}%" if abs(pct) < 10 else f"{pct:,.0f}%"
    if metric.startswith("wait_"):
        return f"{value:.2f}"
    prefix, suffix = money_unit(metric, currency)
    sign = "−" if value < 0 else ""
    v = abs(value)
    fraction = 0 < v < 10 and v != round(v) and not prefix  # 3.8 conversions, but 3
    digits = 2 if (metric == "cac" and v < 100) else 1 if fraction else 0
    return f"{sign}{prefix}{v:,.{digits}f}{suffix}"


def _cell(metric: str, mean: float, lo: float, hi: float, info: Run, signed: bool = False) -> str:
    """A table cell: the mean, and its 5–95% range below it when there is a spread."""

    def fmt(value: float) -> str:
        text = _fmt(metric, value, info.currency)
        return "+" + text if signed and not pd.isna(value) and value > 0 else text

    text = fmt(mean)
    spread = not (info.point or pd.isna(lo) or lo == hi or metric.startswith("prob_"))
    if spread:
        span = f"{fmt(lo)} – {fmt(hi)}"
        text += f"<span class='range'>{_esc(span)}</span>"
    return f"<td>{text}</td>"


def _head(names: list[str], first: str = "") -> str:
    cells = f"<th class='text'>{_esc(first)}</th>" + "".join(f"<th>{_esc(n)}</th>" for n in names)
    return f"<thead><tr>{cells}</tr></thead>"


def _has_money(summary: pd.DataFrame) -> bool:
    money = summary[summary["metric"].isin(["revenue", "spend"])]["mean"]
    return bool(money.abs().fillna(0.0).gt(0).any())


def _verdict(rows: pd.DataFrame, info: Run, money: bool) -> str:
    best = best_plan(rows, money, info.point)
    top = rows.loc[best]
    name = f"<b>{_esc(top.label)}</b> ({_esc(top.scenario)})"
    if not money:
        return f"{name} has the most conversions on average."
    if info.point:
        return f"{name} is the most profitable plan ({_esc(info.caveat())})."
    word, sure, second = how_sure(rows, best)
    text = (
        f"{name} is {word} the most profitable plan: the most profitable in {sure:.0%} of "
        f"{info.replicates} replicates"
    )
    if second is not None:
        text += (
            f"; too close to call with {_esc(second.label)} ({_esc(second.scenario)}, "
            f"{second.prob_best_profit:.0%})"
        )
    return text + "."


def _plans(result: SimulationResult, info: Run, money: bool) -> str:
    """The plans compared: what each is, its conversions and profit, the paired
    difference from the baseline and how sure we are."""
    rows = result.comparison()
    best = best_plan(rows, money, info.point)
    cols: list[tuple[str, str]] = [("conversions", "conversions")]
    cols.append(("uplift_conversions", "extra conversions vs the baseline"))
    if not info.point:
        cols.append(("prob_beats_baseline", "chance of more conversions"))
    if money:
        cols += [("profit", "profit"), ("uplift_profit", "extra profit vs the baseline")]
        if not info.point:
            cols.append(("prob_best_profit", "chance of the highest profit"))
    body = []
    for k, row in rows.iterrows():
        cells = [f"<td class='text'><b>{_esc(row.label)}</b><br>{_esc(row.scenario)}</td>"]
        for col, _ in cols:
            value = row.get(col)
            if value is None or value != value:
                first = k == 0 and col == "uplift_conversions"
                cells.append("<td class='text note'>baseline</td>" if first else "<td></td>")
                continue
            metric = {"conversions": "conversions", "profit": "profit"}.get(col, col)
            lo, hi = row.get(f"{col}_p05", float("nan")), row.get(f"{col}_p95", float("nan"))
            cells.append(_cell(metric, value, lo, hi, info, signed=col.startswith("uplift")))
        style = " class='best'" if k == best else ""
        body.append(f"<tr{style}>{''.join(cells)}</tr>")
    head = _head([c[1] for c in cols], "plan")
    table = f"<table class='plans'>{head}<tbody>{''.join(body)}</tbody></table>"
    return f"<p class='verdict'>{_verdict(rows, info, money)}</p>{table}"


def _metric_table(frame: pd.DataFrame, info: Run, skip: frozenset[str] = frozenset()) -> str:
    """A long summary (``scenario, metric, mean, p05, p95``) as a table: a row per
    metric, a column per plan."""
    frame = frame[~frame["metric"].isin(skip)]
    if frame.empty:
        return ""
    plans = list(dict.fromkeys(frame["scenario"]))
    churned = "churned" in set(frame["metric"])
    indexed = frame.set_index(["metric", "scenario"])
    body = []
    for metric in dict.fromkeys(frame["metric"]):
        cells = [f"<td class='text'>{_esc(metric_name(metric, churned))}</td>"]
        for plan in plans:
            if (metric, plan) in indexed.index:
                r = indexed.loc[(metric, plan)]
                signed = metric.startswith("uplift_")
                cells.append(_cell(metric, r["mean"], r["p05"], r["p95"], info, signed))
            else:
                cells.append("<td></td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    return f"<table>{_head(plans, 'metric')}<tbody>{''.join(body)}</tbody></table>"


def _split_tables(frame: pd.DataFrame, info: Run, group: str, skip: frozenset[str]) -> str:
    """A summary split by ``group`` (channel, persona, queue): a small table per metric,
    a row per group, a column per plan; rows that are zero for every plan are left out."""
    frame = frame[~frame["metric"].isin(skip)]
    plans = list(dict.fromkeys(frame["scenario"]))
    parts = []
    for metric, rows in frame.groupby("metric", sort=False):
        indexed = rows.set_index([group, "scenario"])
        body = []
        for name in dict.fromkeys(rows[group]):
            values = rows[rows[group] == name][["mean", "p05", "p95"]]
            if not values.fillna(0.0).to_numpy().any():
                continue
            cells = [f"<td class='text'>{_esc(_GROUPS.get(name, name))}</td>"]
            for plan in plans:
                if (name, plan) in indexed.index:
                    r = indexed.loc[(name, plan)]
                    cells.append(_cell(str(metric), r["mean"], r["p05"], r["p95"], info))
                else:
                    cells.append("<td></td>")
            body.append(f"<tr>{''.join(cells)}</tr>")
        if body:
            head = _head(plans, metric_name(str(metric)))
            parts.append(f"<table class='split'>{head}<tbody>{''.join(body)}</tbody></table>")
    return "".join(parts)


def write_report(result: SimulationResult, folder: str | Path, plots: list[Path]) -> Path:
    """Write ``report.html`` into ``folder`` from the result and the PNGs already drawn."""
    folder = Path(folder)
    attrs = result.dataset.attrs
    info = run_info(result)
    summary = result.summary()
    money = _has_money(summary)
    skip = frozenset() if money else ECONOMIC_METRICS
    title = _esc(attrs.get("title") or "funnelsim forecast")
    parts = [f"<h1>{title}</h1>"]
    if attrs.get("description"):
        parts.append(f"<p class='lead'>{_esc(attrs['description'])}</p>")
    parts.append(f"<p class='note'>{_about(result, info, money)}</p>")
    if result.variants:
        parts += ["<h2>The plans compared</h2>", _plans(result, info, money)]
    per_plan = summary[~summary["metric"].str.startswith(("uplift_", "prob_", "incremental_"))]
    parts += ["<h2>Totals over the horizon</h2>", _metric_table(per_plan, info, skip)]
    if result.variants:
        diff = summary[summary["metric"].str.startswith(("uplift_", "prob_", "incremental_"))]
        diff = diff[diff["scenario"] != result.scenarios[0]]
        how = (
            "Extra conversions, revenue and profit are differences from the baseline."
            if info.point
            else "Differences are paired: replicate by replicate, each variant is compared "
            "with the baseline run on the same random numbers."
        )
        chances = frozenset(m for m in diff["metric"] if m.startswith("prob_"))
        parts += [
            "<h2>Each variant against the baseline</h2>",
            f"<p class='note'>{how}</p>",
            _metric_table(diff, info, skip | chances if info.point else skip),
        ]
    for dim, heading in (("channel", "By channel"), ("segment", "By persona")):
        split = result.summary_by(dim)
        if split[dim].nunique() > 1:
            note = (
                "<p class='note'>Split by the channel that first brought each person in "
                "(word of mouth counts as its own channel).</p>"
                if dim == "channel"
                else ""
            )
            parts += [f"<h2>{heading}</h2>", note, _split_tables(split, info, dim, skip)]
    queues = result.summary_queues()
    if queues is not None:
        names = list(dict.fromkeys(queues["queue"]))
        if len(names) == 1:
            table = _metric_table(queues.drop(columns="queue"), info)
            parts += [f"<h2>The queue at {_esc(names[0])}</h2>", table]
        else:
            parts += ["<h2>Queues</h2>", _split_tables(queues, info, "queue", frozenset())]
    for path in plots:
        stem = Path(path).stem
        heading, caption = PLOT_CAPTIONS.get(stem, (stem.replace("_", " "), ""))
        data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
        parts.append(
            f"<h2>{_esc(heading)}</h2><figure><img alt='{_esc(heading)}' "
            f"src='data:image/png;base64,{data}'><figcaption>{_esc(caption)}</figcaption>"
            "</figure>"
        )
    page = (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{title}</title>"
        f"<style>{_STYLE}</style></head><body>{''.join(parts)}</body></html>\n"
    )
    out = folder / "report.html"
    out.write_text(page, encoding="utf-8")
    return out


def _about(result: SimulationResult, info: Run, money: bool) -> str:
    """How the forecast was made and how to read its numbers."""
    attrs = result.dataset.attrs
    periods = pd.DatetimeIndex(result.dataset["period"].values)
    step = (periods[1] - periods[0]).days if len(periods) > 1 else 1
    unit = {1: "day", 7: "week"}.get(step, f"{step}-day period")
    span = f"{len(periods)} {unit}s from {periods[0].day} {periods[0]:%B %Y}"
    engine = _esc(attrs.get("engine"))
    if info.deterministic:
        how = f"Expected values from the {engine} engine (deterministic: no ranges)"
    else:
        how = (
            f"{info.replicates:,} simulated replicates with the {engine} engine (seed "
            f"{attrs.get('seed')}); each number is the mean across replicates, and the "
            "small range below it holds 90% of them (5–95%)"
        )
    text = f"Forecast over {span}. {how}."
    if money:
        text += f" Money in {_esc(info.currency)}." if info.currency else ""
    else:
        text += " No economics were given, so there are no money figures."
    return text + f" funnelsim {_esc(__version__)}."
