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
    header = [h.strip() for h in rows[0]] if rows else []
    if "date" not in header and any(";" in h for h in header):
        return None, [
            Problem(
                where + ("csv",),
                f"{label}: the file looks semicolon-separated (its first row is "
                f"{';'.join(rows[0])!r})",
                "save it as comma-separated CSV (a spreadsheet's Save As offers "
                "'CSV, comma-delimited'), with plain numbers such as 1150.50",
            )
        ]
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
    found: list[tuple[int, Problem]] = []  # (row, problem), reported in row order
    values: dict[dt.date, float] = {}
    bad_dates: list[tuple[int, str]] = []
    bad_numbers: list[tuple[int, str]] = []
    formatted: list[tuple[int, str]] = []  # `$1,150`, `1.150,00`: numbers dressed up
    for row_number, row in enumerate(rows[1:], start=2):  # row numbers as in a spreadsheet
        while len(row) > len(header) and not row[-1].strip():
            row = row[:-1]  # a trailing comma is not a number written as money
        if not row:
            continue
        if len(row) > len(header):  # an unquoted `1,150` or `1.150,00` splits into cells
            formatted.append((row_number, ",".join(row[header.index(column) :])))
            continue
        cells = dict(zip(header, row))
        text_date, text_value = cells.get("date", "").strip(), cells.get(column, "").strip()
        try:
            day = dt.date.fromisoformat(text_date)
        except ValueError:
            bad_dates.append((row_number, text_date))
            continue
        if day in values:
            found.append(
                (
                    row_number,
                    Problem(
                        where + ("csv",),
                        f"{label} row {row_number}: date {day} appears twice",
                        "give one row per day",
                    ),
                )
            )
        amount = _number(text_value)
        if amount is None:
            (formatted if _dressed(text_value) else bad_numbers).append((row_number, text_value))
            amount = math.nan
        elif amount < 0:
            found.append(
                (
                    row_number,
                    Problem(
                        where + ("csv",),
                        f"{label} row {row_number}: negative spend {amount:g} in column {column!r}",
                        "spend is zero or more",
                    ),
                )
            )
        values[day] = amount
    grouped = [
        _grouped(bad_dates, "{text!r} is not a date", "dates not written YYYY-MM-DD")
        + ("write YYYY-MM-DD",),
        _grouped(
            bad_numbers,
            f"{{text!r}} in column {column!r} is not a number",
            f"values in column {column!r} that are not numbers",
        )
        + ("use plain numbers such as 1250.50, no currency signs",),
        _grouped(
            formatted,
            f"{{text!r}} in column {column!r} is written with a currency sign or separators",
            f"values in column {column!r} written with currency signs or separators",
        )
        + (
            "write plain numbers without currency signs or thousands separators, with a "
            "decimal point: 1150.50, not $1,150.50 or 1.150,50",
        ),
    ]
    found += [
        (row, Problem(where + ("csv",), f"{label}{message}", hint))
        for row, message, hint in grouped
        if message
    ]
    problems = [problem for _, problem in sorted(found, key=lambda item: item[0])]
    undated = bool(bad_dates) or any(len(r) > len(header) for r in rows[1:])
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


def _number(text: str) -> float | None:
    """``text`` as a finite number, or None."""
    try:
        amount = float(text)
    except ValueError:
        return None
    return amount if math.isfinite(amount) else None


def _dressed(text: str) -> bool:
    """Whether ``text`` is a number once currency signs, spaces and separators are
    removed (``$1,150``, ``1.150,00``, ``€ 90``)."""
    bare = "".join(c for c in text if c not in "$€£¥ ,.'\u00a0")
    return bare != text and bare.isdigit()


def _grouped(found: list[tuple[int, str]], one: str, many: str) -> tuple[int, str]:
    """``(first row, message)`` for all ``(row, text)`` of one kind (an empty message when
    there are none): a mistake made in every row of a file is reported once."""
    if not found:
        return 0, ""
    if len(found) == 1:
        row, text = found[0]
        return row, f" row {row}: " + one.format(text=text)
    rows = ", ".join(str(r) for r, _ in found[:3]) + (" …" if len(found) > 3 else "")
    examples = ", ".join(repr(t) for t in list(dict.fromkeys(t for _, t in found))[:2])
    return found[0][0], f": {len(found)} rows ({rows}) have {many}, such as {examples}"
