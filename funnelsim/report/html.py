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
th:first-child, td:first-child { text-align: left; }
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


def _table(frame: pd.DataFrame, best_row: int | None = None) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = []
    for k, row in enumerate(frame.itertuples(index=False)):
        cells = "".join(
            f"<td>{_number(v) if isinstance(v, int | float) else html.escape(str(v))}</td>"
            for v in row
        )
        cls = ' class="best"' if k == best_row else ""
        rows.append(f"<tr{cls}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


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
    return _table(frame, best)


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
        _table(result.summary()),
    ]
    by_channel = result.summary_by("channel")
    parts += [
        "<h2>Conversions by channel</h2>",
        _table(by_channel[by_channel["metric"] == "conversions"].drop(columns="metric")),
    ]
    queues = result.summary_queues()
    if queues is not None:
        parts += ["<h2>Queues</h2>", _table(queues)]
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
