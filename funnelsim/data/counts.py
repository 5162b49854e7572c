"""Aggregate funnel counts (a dashboard's daily or weekly numbers per stage) and spend per
campaign, read and validated into :class:`CountData`.

The counts file is a long table ``period,stage,count[,kind][,segment]``: ``period`` is the
ISO date the period starts; ``kind`` is ``entries`` (flows into the stage during the
period, the default) or ``occupancy`` (people in the stage at the period's end). The spend
file is ``date,<campaign>,...`` with one row per day or one row per period (on the period's
start date; its spend is spread evenly over the period's days).

>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> _ = (folder / "counts.csv").write_text(
...     "period,stage,count\\n2024-01-01,visit,120\\n2024-01-01,buy,7\\n"
...     "2024-01-08,visit,135\\n2024-01-08,buy,9\\n")
>>> _ = (folder / "spend.csv").write_text(
...     "date,tv\\n2023-12-25,700\\n2024-01-01,1400\\n2024-01-08,0\\n")
>>> data = load_counts(folder / "counts.csv", folder / "spend.csv", stages=["visit", "buy"])
>>> data.period_days, data.series, data.counts.shape
(7, (('visit', 'entries'), ('buy', 'entries')), (1, 2, 2))
>>> str(data.spend_start.date()), data.spend.shape, data.spend[0, 6:8].tolist()
('2023-12-25', (1, 21), [100.0, 200.0])
>>> data.head(1).counts[0].tolist()
[[120.0, 7.0]]

Every fault is reported with its file, rows and a hint:

>>> _ = (folder / "bad.csv").write_text("period,stage,count\\n2024-01-01,visit,-3\\n")
>>> load_counts(folder / "bad.csv", stages=["visit", "buy"])
Traceback (most recent call last):
...
funnelsim.errors.ScenarioError: .../bad.csv: 1 problem
  - .../bad.csv:2: count: 1 count(s) are negative: row 2 ('-3') (counts are zero or more: ...)
"""

from __future__ import annotations

import csv
import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import NoReturn

import numpy as np
import pandas as pd
import pyarrow as pa

from funnelsim.data.events import open_table, shown_rows, to_ns
from funnelsim.data.spend import _dressed, _number
from funnelsim.data.stagemap import COUNT_COLUMNS, parse_columns
from funnelsim.errors import Problem, ScenarioError, did_you_mean
from funnelsim.funnel import LOST

__all__ = ["CountData", "KINDS", "read_counts", "read_count_spend", "load_counts"]

#: the kinds of count, in the order of :attr:`CountData.series` within a stage
KINDS = ("entries", "occupancy")
_NS_DAY = 86_400 * 10**9
_DAY = np.timedelta64(1, "D")
_DATE_HINT = "write YYYY-MM-DD, e.g. 2024-01-01"
_KINDS = "entries: flows into the stage during the period; occupancy: people in it at the end"
_GAPS = "give a row for every period of every counted series (0 when nothing happened)"
_PLAIN = "write plain numbers, no currency signs or thousands separators: 1150.50, not $1,150.50"


@dataclass(frozen=True, eq=False)
class CountData:
    """Validated counts ``(G segments, T periods, N series)`` and daily spend ``(C, D)``."""

    dates: pd.DatetimeIndex
    period_days: int
    stages: tuple[str, ...]
    segments: tuple[str, ...]
    series: tuple[tuple[str, str], ...]
    counts: np.ndarray
    campaigns: tuple[str, ...]
    spend: np.ndarray
    spend_start: pd.Timestamp
    file: str

    @property
    def n_periods(self) -> int:
        return len(self.dates)

    @property
    def n_days(self) -> int:
        return self.n_periods * self.period_days

    def head(self, n_periods: int) -> CountData:
        """The first ``n_periods`` periods of counts (spend kept whole, for forecasts)."""
        if not 1 <= n_periods <= self.n_periods:
            raise ValueError(f"n_periods must be from 1 to {self.n_periods}, not {n_periods}")
        return replace(self, dates=self.dates[:n_periods], counts=self.counts[:, :n_periods])


class _Faults(list[Problem]):
    """The problems found in one file, raised together by :meth:`check`."""

    def __init__(self, label: str) -> None:
        super().__init__()
        self.label = label

    def add(self, where: str | tuple[str, ...], message: str, hint: str, line: int | None = None,
            file: bool = True) -> None:  # fmt: skip
        path = (where,) if isinstance(where, str) else where
        self.append(Problem(path, message, hint, self.label if file else None, line))

    def rows(self, where: str | tuple[str, ...], rows: np.ndarray, mask: np.ndarray,
             values: Sequence[object] | np.ndarray, message: str, hint: str) -> None:  # fmt: skip
        """One problem for all rows where ``mask`` holds (none when it holds nowhere)."""
        at = np.flatnonzero(mask)
        if len(at):
            shown = [(int(rows[k]), values[k]) for k in at[:5]]
            more = f" (and {len(at) - 5} more)" if len(at) > 5 else ""
            self.add(where, f"{len(at)} {message}: {shown_rows(shown)}{more}", hint, shown[0][0])

    def fail(self, where: str | tuple[str, ...], message: str, hint: str, line: int | None = None,
             file: bool = True) -> NoReturn:  # fmt: skip
        self.add(where, message, hint, line, file)
        self.check()
        raise AssertionError  # unreachable: check raises

    def check(self) -> None:
        if self:
            raise ScenarioError(self, self.label)


def read_counts(
    path: str | Path,
    *,
    stages: Sequence[str],
    columns: str | Mapping[str, str] | None = None,
    latent: Sequence[str] = (),
) -> pd.DataFrame:
    """The validated long table ``period (datetime64), stage, kind, segment, count``
    from a CSV or Parquet file, sorted by funnel stage, kind, segment and period.

    ``stages`` are the funnel's stages (``lost`` is ignored); ``latent`` those the
    dashboard does not count. An empty ``kind`` cell means entries. Every fault raises
    :class:`ScenarioError` naming the file and rows (CSV rows count the header as row 1).
    """
    path = Path(path)
    found = _Faults(str(path))
    table, first_row = _table(path, parse_columns(columns, "counts"), found.label)
    rows = np.arange(first_row, first_row + table.num_rows)
    funnel = [s for s in stages if s != LOST]
    for s in (s for s in latent if s not in funnel):  # a fault of the priors file
        what = f"latent stage {s!r} is not a stage of the funnel"
        found.add("latent", what, did_you_mean(s, funnel), file=False)
    ns, bad = to_ns(table.column("period"))
    bad = bad | (ns % _NS_DAY != 0)  # a date-time is not the start of a period
    texts = table.column("period").cast(pa.string()).to_pylist()
    found.rows("period", rows, bad, texts, "period date(s) could not be read", _DATE_HINT)
    count = _counts(table.column("count"), rows, found)
    stage = np.array([s.strip() for s in _text(table, "stage", "")], dtype=object)
    for name in dict.fromkeys(s for s in stage if s not in funnel):
        what = (
            f"row(s) have stage {name!r}, which is not a stage of the funnel ({', '.join(funnel)})"
        )
        hint = (
            "`lost` is not counted: drop its rows" if name == LOST else did_you_mean(name, funnel)
        )
        found.rows("stage", rows, stage == name, stage, what, hint)
    kind = np.array([k.strip().lower() or KINDS[0] for k in _text(table, "kind", "")], object)
    for name in dict.fromkeys(k for k in kind if k not in KINDS):
        what = f"row(s) have kind {name!r}, which is neither entries nor occupancy"
        found.rows("kind", rows, kind == name, kind, what, f"{did_you_mean(name, KINDS)}; {_KINDS}")
    segment = np.array([s.strip() for s in _text(table, "segment", "all")], dtype=object)
    hint = "give every row its segment, or drop the segment column"
    found.rows("segment", rows, segment == "", segment, "row(s) have no segment", hint)
    found.check()
    df = pd.DataFrame({"period": pd.to_datetime(ns), "stage": stage, "kind": kind})
    df = df.assign(segment=segment, count=count, row=rows)
    _coverage(df, funnel, latent, found)
    _duplicates(df, found)
    _grid(df, found)
    found.check()
    rank = {"stage": funnel, "kind": KINDS, "segment": list(dict.fromkeys(segment))}
    order = {c: {v: k for k, v in enumerate(values)} for c, values in rank.items()}
    by = ["stage", "kind", "segment", "period"]
    df = df.sort_values(by, key=lambda c: c.map(order[c.name]) if c.name in order else c)
    return df[["period", "stage", "kind", "segment", "count"]].reset_index(drop=True)


def read_count_spend(
    path: str | Path,
    *,
    dates: pd.DatetimeIndex,
    period_days: int,
    campaigns: Sequence[str] | None = None,
) -> tuple[tuple[str, ...], np.ndarray, pd.Timestamp]:
    """``(campaigns, daily spend (C, D), spend_start)`` for the counts' periods ``dates``.

    Rows may be daily or one per period (detected from their spacing). Rows before the
    first period are kept (they feed carryover; ``spend_start`` is the first of them),
    rows after the last period are dropped. ``campaigns`` are the names a priors file
    declares: a spend column not among them, or one of them without a column, is an error.
    """
    path = Path(path)
    found = _Faults(str(path))
    header, body, first_row = _spend_table(path, found)
    if "date" not in header:
        close = difflib.get_close_matches("date", header, n=1, cutoff=0.5)
        hint = f"rename {close[0]!r} to `date`" if close else "name the columns date,<campaign>,..."
        found.fail("date", f"no `date` column (the file has: {', '.join(header)})", hint, 1)
    names = [h for h in header if h and h != "date"]
    if not names:
        found.fail("columns", "no campaign columns", "add a column of spend per campaign", 1)
    if campaigns is not None:
        _campaign_names(names, campaigns, found)
    rows = np.arange(first_row, first_row + len(body))
    wide = np.array([len(r) > len(header) for r in body], dtype=bool)
    cells = [dict(zip(header, r)) for r in body] if body else []
    text = [c.get("date", "").strip() for c in cells]
    ns, bad = to_ns(pa.array(text, pa.string()))
    bad = (bad | (ns % _NS_DAY != 0)) & ~wide
    found.rows("date", rows, bad, text, "date(s) could not be read", _DATE_HINT)
    message = "row(s) have more cells than the header: numbers written with separators?"
    found.rows("spend", rows, wide, [",".join(r) for r in body], message, _PLAIN)
    values = np.full((len(names), len(body)), np.nan)
    for c, name in enumerate(names):
        cell = [r.get(name, "").strip() for r in cells]
        values[c] = [np.nan if f or (v := _number(t)) is None else v for t, f in zip(cell, wide)]
        none = np.isnan(values[c]) & ~wide
        dressed = np.array([_dressed(t) for t in cell], dtype=bool)
        for mask, what, hint in (
            (none & dressed, "written with currency signs or separators", _PLAIN),
            (none & ~dressed, "not numbers", "use plain numbers, 0 for no spend"),
            (values[c] < 0, "negative", "spend is zero or more"),
        ):
            found.rows(
                ("spend", name), rows, mask, cell, f"value(s) in column {name!r} are {what}", hint
            )
    day = (ns // _NS_DAY).astype("datetime64[D]")
    if not (bad | wide).any():
        first = pd.Series(rows).groupby(day).transform("first").to_numpy()
        hint = "give one row per date"
        found.rows(
            "date", rows, first != rows, day.astype(str).tolist(), "date(s) appear twice", hint
        )
    found.check()
    return _daily(names, values, day, rows, dates, period_days, found)


def load_counts(
    counts_path: str | Path,
    spend_path: str | Path | None = None,
    *,
    stages: Sequence[str],
    columns: str | Mapping[str, str] | None = None,
    latent: Sequence[str] = (),
    campaigns: Sequence[str] | None = None,
) -> CountData:
    """Read and check the counts file (and the spend file) into :class:`CountData`.

    ``campaigns`` are the names a priors file declares (checked against the spend
    columns); declaring campaigns without a spend file is an error.
    """
    df = read_counts(counts_path, stages=stages, columns=columns, latent=latent)
    dates = pd.DatetimeIndex(sorted(df["period"].unique()))
    period_days = int((dates[1] - dates[0]) / pd.Timedelta(days=1))
    segment_index, pairs = _labels(df)
    segments, series = tuple(map(str, segment_index)), tuple((str(s), str(k)) for s, k in pairs)
    wide = df.pivot(index=["segment", "period"], columns=["stage", "kind"], values="count")
    wide = wide.reindex(pd.MultiIndex.from_product([segments, dates]))[list(series)]
    counts = wide.to_numpy(np.float64).reshape(len(segments), len(dates), len(series))
    names: tuple[str, ...] = ()
    spend, start = np.zeros((0, len(dates) * period_days)), dates[0]
    if spend_path is not None:
        names, spend, start = read_count_spend(
            spend_path, dates=dates, period_days=period_days, campaigns=campaigns
        )
    elif campaigns:
        what = f"the priors file declares campaigns ({', '.join(campaigns)}) but no spend file"
        _Faults(str(counts_path)).fail(
            "--spend", what, "give it with --spend SPEND.csv", file=False
        )
    funnel = tuple(s for s in stages if s != LOST)
    file = Path(counts_path).name
    return CountData(
        dates, period_days, funnel, segments, series, counts, names, spend, start, file
    )


def _table(path: Path, canon: Mapping[str, str], label: str) -> tuple[pa.Table, int]:
    """The file's canonical columns (CSV as text); a CSV count written ``1,234`` without
    quotes is rejoined into one cell (and reported with the other counts)."""
    try:
        parts = list(open_table(path, canon, COUNT_COLUMNS, "counts", 1 << 22))
    except ScenarioError:
        repaired = _rejoin(path, canon) if path.suffix.lower() == ".csv" else None
        if repaired is None:
            raise
        return repaired, 2
    return pa.Table.from_batches([p[0] for p in parts]), parts[0][1]


def _rejoin(path: Path, canon: Mapping[str, str]) -> pa.Table | None:
    """The CSV with each too-long row's count cells rejoined, or None when some row is
    too long for another reason (the reader's own error then stands)."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            header, *body = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError, csv.Error, ValueError):
        return None
    theirs = {c: canon.get(c, c) for c in COUNT_COLUMNS}
    if any(theirs[c] not in header for c in ("period", "stage", "count")):
        return None
    at, width, rejoined = header.index(theirs["count"]), len(header), False
    for k, row in enumerate(body):
        while len(row) > width and not row[-1].strip():
            row = row[:-1]
        extra = len(row) - width
        if extra > 0:
            joined = ",".join(row[at : at + extra + 1])
            if not _dressed(joined.strip()):
                return None
            body[k], rejoined = row[:at] + [joined] + row[at + extra + 1 :], True
    if not rejoined:
        return None
    use = {c: header.index(theirs[c]) for c in theirs if theirs[c] in header}
    return pa.table(
        {c: pa.array([r[i] if r else "" for r in body], pa.string()) for c, i in use.items()}
    )


def _text(table: pa.Table, name: str, default: str) -> list[str]:
    if name not in table.column_names:
        return [default] * table.num_rows
    return [str(v) for v in table.column(name).cast(pa.string()).fill_null("").to_pylist()]


def _counts(column: pa.ChunkedArray, rows: np.ndarray, found: _Faults) -> np.ndarray:
    """Counts as floats; rows that are not whole numbers of zero or more go to ``found``."""
    if pa.types.is_integer(column.type) or pa.types.is_floating(column.type):
        texts = [str(v) for v in column.to_pylist()]
        value = column.to_numpy().astype(float)
    else:
        texts = [str(v or "").strip() for v in column.cast(pa.string()).to_pylist()]
        value = np.array([np.nan if (v := _number(t)) is None else v for t in texts])
    missing = np.isnan(value)
    dressed = missing & np.array([_dressed(t) for t in texts], dtype=bool)
    for mask, what, hint in (
        (dressed, "written with thousands separators", "write plain numbers: 1234, not 1,234"),
        (missing & ~dressed, "not numbers", "write whole numbers such as 1234 (0 for none)"),
        (~missing & (value != np.round(value)), "not whole numbers", "counts are whole numbers of "
         "people (1.234 meant as 1234? write 1234)"),
        (value < 0, "negative", "counts are zero or more: is a correction entered as a count?"),
    ):  # fmt: skip
        found.rows("count", rows, mask, texts, f"count(s) are {what}", hint)
    return value


def _coverage(df: pd.DataFrame, funnel: list[str], latent: Sequence[str], found: _Faults) -> None:
    """Every funnel stage counted unless latent; no latent stage counted."""
    counted = set(df["stage"])
    missing = [s for s in funnel if s not in counted and s not in latent]
    if missing:
        what = f"funnel stage(s) {', '.join(map(repr, missing))} have no counts (the file counts "
        hint = "list stages the dashboard does not count under `latent:` in the priors file"
        what += ", ".join(s for s in funnel if s in counted) + ")"
        found.add("stage", what, f"{hint} (e.g. `latent: [{', '.join(missing)}]`) or add counts")
    rows, stage = df["row"].to_numpy(), df["stage"].to_numpy()
    for s in (s for s in latent if s in counted):
        what = f"row(s) count stage {s!r}, which the priors file lists under `latent:`"
        hint = "remove it from `latent:` (the stage is counted), or drop its rows"
        found.rows("latent", rows, stage == s, stage, what, hint)


def _duplicates(df: pd.DataFrame, found: _Faults) -> None:
    keys = ["period", "stage", "kind", "segment"]
    groups = list(df[df.duplicated(keys, keep=False)].groupby(keys, sort=False)["row"])
    if groups:
        shown = "; ".join(f"rows {', '.join(map(str, r))} ({p:%Y-%m-%d}, {s}, {k}, {g})"
                          for (p, s, k, g), r in groups[:3])  # fmt: skip
        more = f" (and {len(groups) - 3} more)" if len(groups) > 3 else ""
        what = f"{len(groups)} (period, stage, kind, segment) combination(s) appear on several rows"
        hint = "give one row per period, stage, kind and segment (add up parts of one count first)"
        found.add("rows", f"{what}: {shown}{more}", hint, int(groups[0][1].min()))


def _grid(df: pd.DataFrame, found: _Faults) -> None:
    """Periods evenly spaced by 1 or 7 days, without gaps, in every series."""
    periods = np.unique(df["period"].to_numpy()).astype("datetime64[D]")
    if len(periods) < 2:
        return found.add("period", f"only one period ({periods[0]})", "give at least two periods")
    step = _step(periods)
    if step not in (1, 7):
        what = "monthly" if 28 <= step <= 31 else f"{step} days apart"
        eg = f"(e.g. {periods[0]} then {periods[0] + step * _DAY})"
        hint = "give one row per day or per week, on the date the period starts"
        return found.add("period", f"the periods are {what} {eg}: funnelsim reads daily or "
                         "weekly counts", hint)  # fmt: skip
    unit = "day" if step == 1 else "week"
    day = df["period"].to_numpy().astype("datetime64[D]")
    off = (((day - periods[0]) // _DAY) % step != 0) & ~pd.Series(day).duplicated().to_numpy()
    if off.any():
        what = f"period date(s) are not a whole number of weeks after the first ({periods[0]})"
        hint = "weekly periods all start on the same weekday: give each period's start date"
        return found.rows("period", df["row"].to_numpy(), off, day.astype(str).tolist(), what, hint)
    grid = np.arange(periods[0], periods[-1] + _DAY, step * _DAY)
    gone = np.setdiff1d(grid, periods)
    if len(gone):
        what = f"the periods have gaps: no rows at all for {len(gone)} {unit}(s): {_dates(gone)}"
        found.add("period", what, _GAPS)
    segments, pairs = _labels(df)
    have = np.zeros((len(segments), len(pairs), len(grid)), dtype=bool)
    have[:, :, np.isin(grid, gone)] = True  # reported above
    series = pd.MultiIndex.from_frame(df[["stage", "kind"]])
    at = segments.get_indexer(df["segment"]), pairs.get_indexer(series)
    have[at[0], at[1], ((day - periods[0]) // _DAY) // step] = True
    for g, n in np.argwhere(~have.all(axis=2)):
        (s, k), lack = pairs[n], grid[~have[g, n]]
        what = f"series {s} {k}" + (f" (segment {segments[g]})" if segments[g] != "all" else "")
        what += f" has no rows for {len(lack)} of the {len(grid)} {unit}s"
        found.add("rows", f"{what}: {_dates(lack)}", _GAPS)
    return None


def _labels(df: pd.DataFrame) -> tuple[pd.Index, pd.MultiIndex]:
    """Segments in order of appearance, and (stage, kind) series in the table's order."""
    pairs = pd.MultiIndex.from_frame(df[["stage", "kind"]]).unique()
    return pd.Index(pd.unique(df["segment"])), pd.MultiIndex.from_tuples(list(pairs))


def _step(days: np.ndarray) -> int:
    """The most common spacing of sorted days, in days."""
    return int(np.argmax(np.bincount((np.diff(days) // _DAY).astype(int))))


def _dates(days: np.ndarray) -> str:
    return ", ".join(str(d) for d in days[:3]) + (" …" if len(days) > 3 else "")


def _campaign_names(names: list[str], campaigns: Sequence[str], found: _Faults) -> None:
    """A spend column that is not a declared campaign (a typo pairs it with the campaign it
    names, reported once), and declared campaigns without a column."""
    absent = [c for c in campaigns if c not in names]
    for name in (n for n in names if n not in campaigns):
        close = difflib.get_close_matches(name, absent, n=1, cutoff=0.6)
        absent = [c for c in absent if c not in close]
        hint = f"did you mean {close[0]!r}?" if close else did_you_mean(name, campaigns)
        what = f"spend column {name!r} is not a campaign of the priors file"
        hint += "; declare it under `campaigns:` in the priors file, or drop the column"
        found.add(("spend", name), f"{what} ({', '.join(campaigns)})", hint, 1)
    for c in absent:
        hint = f"add a column {c} (spend per day or per period), or remove it from the priors file"
        found.add(("spend", c), f"campaign {c!r} of the priors file has no spend column", hint, 1)


def _spend_table(path: Path, found: _Faults) -> tuple[list[str], list[list[str]], int]:
    """Header, rows (as text, trailing empty cells dropped) and the first row's number."""
    if not path.is_file():
        found.fail("--spend", f"spend file not found: {path}", "check the path")
    try:
        if path.suffix.lower() == ".parquet":
            frame = pd.read_parquet(path).astype(object)
            header, first = [str(c) for c in frame.columns], 1
            body = [["" if pd.isna(v) else str(v) for v in r] for r in frame.itertuples(False)]
        else:
            with path.open(newline="", encoding="utf-8-sig") as handle:
                header, *body = list(csv.reader(handle)) or [[]]
            first = 2
    except (OSError, UnicodeDecodeError, csv.Error, ValueError, pa.ArrowException) as exc:
        found.fail("file", f"cannot read the file: {exc}", "save it as UTF-8 CSV or Parquet")
    header = [h.strip() for h in header]
    if len(header) == 1 and ";" in header[0]:
        what = f"the file looks semicolon-separated (its first row is {header[0]!r})"
        found.fail("file", what, "save it as comma-separated CSV", 1)
    for k, row in enumerate(body):
        while len(row) > len(header) and not row[-1].strip():
            row = row[:-1]
        body[k] = row
    keep = [k for k, r in enumerate(body) if any(c.strip() for c in r)]
    if not header or not keep:
        found.fail(
            "file", "the spend file has no rows", "one row per day or period: date,<campaign>"
        )
    if keep[-1] + 1 - keep[0] != len(keep):  # a blank line inside would shift row numbers
        found.fail("file", "the spend file has blank rows", "remove the empty rows")
    return header, [body[k] for k in keep], first + keep[0]


def _daily(names: list[str], values: np.ndarray, day: np.ndarray, rows: np.ndarray,
           dates: pd.DatetimeIndex, period_days: int, found: _Faults,
           ) -> tuple[tuple[str, ...], np.ndarray, pd.Timestamp]:  # fmt: skip
    """Per-day spend from daily or per-period rows, from the first row to the counts' end."""
    first = dates[0].to_datetime64().astype("datetime64[D]")
    end = first + len(dates) * period_days * _DAY  # the day after the last period
    order = np.argsort(day)
    day, values, rows = day[order], values[:, order], rows[order]
    step = _step(day) if len(day) > 1 else period_days
    if step not in (1, period_days):
        hint = f"give one row per day, or one per period ({period_days} days) on its start date"
        found.fail("date", f"the spend rows are {step} days apart", hint)
    what = f"date(s) are not the start of a period of the counts ({first} and every {step} days)"
    hint = "give per-period spend on each period's start date, or one row per day"
    found.rows(
        "date", rows, ((day - first) // _DAY) % step != 0, day.astype(str).tolist(), what, hint
    )
    found.check()
    start = min(day[0], first)
    spend = np.full((len(names), int((end - start) // _DAY)), np.nan)
    for k in np.flatnonzero(day < end):
        at = int((day[k] - start) // _DAY)
        spend[:, at : at + step] = values[:, k : k + 1] / step
    lack = np.arange(start, end, step * _DAY)[np.isnan(spend[0, ::step])]
    if len(lack):
        what, last = ("day" if step == 1 else "period"), end - _DAY
        hint = (
            f"give a row for every {what} from {start} to {last} (0 where a campaign did not run)"
        )
        found.fail("date", f"{len(lack)} {what}(s) have no spend row: {_dates(lack)}", hint)
    within = spend[:, int((first - start) // _DAY) :].sum(axis=1)
    for name in (n for n, total in zip(names, within) if total == 0):
        what = f"campaign {name!r} has zero spend in every period of the counts"
        hint = "its effect cannot be learned: drop the column or add the weeks it ran"
        found.add(("spend", name), f"{what} ({first} to {end - _DAY})", hint, 1)
    found.check()
    return tuple(names), spend, pd.Timestamp(start)
