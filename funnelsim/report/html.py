"""``report.html``: one self-contained page (tables and plots inlined), readable offline."""

from __future__ import annotations

import base64
import html
from pathlib import Path

import pandas as pd

from funnelsim import __version__
from funnelsim.results import SimulationResult

__all__ = ["write_report"]

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 70rem; color: #222; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
table { border-collapse: collapse; margin: 0.5rem 0; font-size: 0.9rem; }
th, td { padding: 0.25rem 0.6rem; border-bottom: 1px solid #ddd; text-align: right; }
th:first-child, td:first-child, td.text { text-align: left; }
.best { background: #e8f5e9; font-weight: 600; }
.note { color: #666; font-size: 0.85rem; }
img { max-width: 100%; margin: 0.5rem 0; }
"""


def _number(value: float) -> str:
    if pd.isna(value):
        return "–"
    if abs(value) >= 100 or float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:.3g}"


def _cell(value: object, percent: bool = False) -> str:
    if isinstance(value, int | float):
        text = "–" if pd.isna(value) else f"{value:.0%}" if percent else _number(value)
        return f"<td>{text}</td>"
    return f"<td class='text'>{html.escape(str(value))}</td>"


def _table(frame: pd.DataFrame, best_row: int | None = None, percent: tuple = ()) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = []
    for k, row in enumerate(frame.itertuples(index=False)):
        cells = "".join(_cell(v, c in percent) for c, v in zip(frame.columns, row))
        cls = ' class="best"' if k == best_row else ""
        rows.append(f"<tr{cls}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _ranges(summary: pd.DataFrame, index: list[str]) -> pd.DataFrame:
    """Long summary → one row per metric (and split), one column per scenario, cells
    ``mean (p05 – p95)``; probabilities as percentages."""

    def text(row: pd.Series) -> str:
        if row["metric"].startswith("prob_"):
            return f"{row['mean']:.0%}"
        if pd.isna(row["p05"]):
            return _number(row["mean"])
        return f"{_number(row['mean'])} ({_number(row['p05'])} – {_number(row['p95'])})"

    cells = summary.assign(value=summary.apply(text, axis=1))
    order = list(dict.fromkeys(summary["scenario"]))
    wide = cells.pivot_table(
        index=index, columns="scenario", values="value", aggfunc="first", sort=False
    )
    return wide.reindex(columns=order).fillna("").reset_index()


def _plans(result: SimulationResult) -> str:
    rows = result.comparison()
    cols = {
        "scenario": "plan",
        "label": "label",
        "conversions": "conversions",
        "conversions_p05": "p05",
        "conversions_p95": "p95",
        "profit": "profit",
        "profit_p05": "p05 ",
        "profit_p95": "p95 ",
    }
    if result.variants:
        cols |= {
            "uplift_conversions": "Δ conversions",
            "uplift_profit": "Δ profit",
            "prob_beats_baseline": "P(more sales)",
            "prob_best_profit": "P(most profit)",
        }
    frame = rows[list(cols)].rename(columns=cols)
    best = int(rows["profit"].idxmax()) if result.variants else None
    return _table(frame, best, percent=("P(more sales)", "P(most profit)"))


def write_report(result: SimulationResult, folder: str | Path, plots: list[Path]) -> Path:
    """Write ``report.html`` into ``folder`` from the result and the PNGs already drawn."""
    folder = Path(folder)
    attrs = result.dataset.attrs
    title = html.escape(str(attrs.get("title", "funnelsim forecast")))
    parts = [
        f"<h1>{title}</h1>",
        f"<p class='note'>engine {html.escape(str(attrs.get('engine')))}, "
        f"{attrs.get('replicates')} replicates, seed {attrs.get('seed')}, "
        f"funnelsim {__version__}. Ranges are 5–95% across replicates; Δ are paired "
        "differences from the baseline (common random numbers).</p>",
        "<h2>Plans</h2>",
        _plans(result),
        "<h2>Summary</h2>",
        _table(_ranges(result.summary(), ["metric"])),
    ]
    for dim in ("channel", "segment"):
        split = result.summary_by(dim)
        if split[dim].nunique() > 1:
            parts += [f"<h2>By {dim}</h2>", _table(_ranges(split, [dim, "metric"]))]
    queues = result.summary_queues()
    if queues is not None:
        parts += ["<h2>Queues</h2>", _table(_ranges(queues, ["queue", "metric"]))]
    for path in plots:
        data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
        name = html.escape(Path(path).stem)
        parts.append(f"<h2>{name}</h2><img alt='{name}' src='data:image/png;base64,{data}'>")
    page = (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{title}</title>"
        f"<style>{_STYLE}</style></head><body>{''.join(parts)}</body></html>\n"
    )
    out = folder / "report.html"
    out.write_text(page, encoding="utf-8")
    return out
