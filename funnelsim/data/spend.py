"""Daily spend from a CSV file: one row per day, a `date` column and one column per
campaign. Every problem is reported with its row number."""

from __future__ import annotations

import csv
import datetime as dt
import math
from pathlib import Path

import numpy as np

from funnelsim.errors import Problem, did_you_mean

__all__ = ["read_spend_column"]


def read_spend_column(
    path: Path,
    column: str,
    start: dt.date,
    end: dt.date,
    where: tuple[str | int, ...],
    label: str | None = None,
) -> tuple[np.ndarray | None, list[Problem]]:
    """Spend per day from ``start`` to ``end`` (inclusive) from ``column`` of a CSV.

    Returns ``(spend, problems)``; ``spend`` is None when there are problems. Each
    problem names the CSV file and row (the header is row 1) and is attached to the
    scenario path ``where`` (the campaign's `spend` key).
    """
    label = label or str(path)
    if not path.is_file():
        return None, [
            Problem(
                where + ("csv",),
                f"spend file not found: {label}",
                "paths are relative to the scenario file's folder",
            )
        ]
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.reader(handle))
    except UnicodeDecodeError:
        return None, [
            Problem(
                where + ("csv",),
                f"{label} is not UTF-8 text",
                "save it as CSV UTF-8 (the spreadsheet's Save As offers it)",
            )
        ]
    except (OSError, csv.Error) as exc:
        return None, [
            Problem(
                where + ("csv",), f"cannot read {label}: {exc}", "check that the file can be opened"
            )
        ]
    header = rows[0] if rows else []
    if "date" not in header:
        return None, [
            Problem(
                where + ("csv",),
                f"{label}: no `date` column",
                f"the first row should name the columns, e.g. date,{column}",
            )
        ]
    if column not in header:
        return None, [
            Problem(
                where + ("column",),
                f"{label}: no column {column!r}",
                did_you_mean(column, [h for h in header if h != "date"]),
            )
        ]
    problems: list[Problem] = []
    values: dict[dt.date, float] = {}
    undated = False
    for row_number, row in enumerate(rows[1:], start=2):  # row numbers as in a spreadsheet
        if not row:
            continue
        cells = dict(zip(header, row))
        text_date, text_value = cells.get("date", "").strip(), cells.get(column, "").strip()
        try:
            day = dt.date.fromisoformat(text_date)
        except ValueError:
            problems.append(
                Problem(
                    where + ("csv",),
                    f"{label} row {row_number}: {text_date!r} is not a date",
                    "write YYYY-MM-DD",
                )
            )
            undated = True
            continue
        if day in values:
            problems.append(
                Problem(
                    where + ("csv",),
                    f"{label} row {row_number}: date {day} appears twice",
                    "give one row per day",
                )
            )
        try:
            amount = float(text_value)
            if not math.isfinite(amount):
                raise ValueError
        except ValueError:
            problems.append(
                Problem(
                    where + ("csv",),
                    f"{label} row {row_number}: "
                    f"{text_value!r} in column {column!r} is not a number",
                    "use plain numbers such as 1250.50, no currency signs",
                )
            )
            amount = math.nan
        if amount < 0:
            problems.append(
                Problem(
                    where + ("csv",),
                    f"{label} row {row_number}: negative spend {amount:g} in column {column!r}",
                    "spend is zero or more",
                )
            )
        values[day] = amount
    days = [start + dt.timedelta(days=k) for k in range((end - start).days + 1)]
    missing = [d for d in days if d not in values]
    if missing and not undated:  # an unreadable date may be one of the missing days
        shown = ", ".join(str(d) for d in missing[:3]) + (" …" if len(missing) > 3 else "")
        problems.append(
            Problem(
                where + ("csv",),
                f"{label}: {len(missing)} day(s) of the campaign window have no spend row: {shown}",
                "give one row per day from the campaign's start to its end "
                "(0 for days without spend)",
            )
        )
    if problems:
        return None, problems
    return np.array([values[d] for d in days]), []
