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
"""

from __future__ import annotations

import csv
import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

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
_DAY = np.timedelta64(1, "D")
_KIND_HINT = "entries: flows into the stage during the period; occupancy: people in it at the end"
_GAP_HINT = "give a row for every period of every counted series (0 when nothing happened)"
_LATENT_HINT = "list stages the dashboard does not count under `latent:` in the priors file"


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
    label = str(path)
    canon = parse_columns(columns, "counts")
    table, first_row = _table(path, canon, label)
    rows = np.arange(first_row, first_row + table.num_rows)
    funnel = [s for s in stages if s != LOST]
    problems = [
        Problem(
            ("latent",), f"latent stage {s!r} is not a stage of the funnel", did_you_mean(s, funnel)
        )
        for s in latent
        if s not in funnel
    ]
    ns, bad = to_ns(table.column("period"))
    bad = bad | (ns % (86_400 * 10**9) != 0)  # a date-time is not the start of a period
    texts = table.column("period").cast(pa.string()).to_pylist()
    problems += _listed(
        ("period",), rows, bad, texts, "period date(s) could not be read",
        "write the date each period starts as YYYY-MM-DD, e.g. 2024-01-01", label,
    )  # fmt: skip
    count, count_problems = _counts(table.column("count"), rows, label)
    problems += count_problems
    stage = np.array([s.strip() for s in _text(table, "stage", "")], dtype=object)
    for name in dict.fromkeys(s for s in stage if s not in funnel):
        hint = (
            "`lost` is not counted: drop its rows" if name == LOST else did_you_mean(name, funnel)
        )
        problems += _listed(
            ("stage",), rows, stage == name, stage, f"row(s) have stage {name!r}, "
            f"which is not a stage of the funnel ({', '.join(funnel)})", hint, label,
        )  # fmt: skip
    kind = np.array([k.strip().lower() or "entries" for k in _text(table, "kind", "")], object)
    for name in dict.fromkeys(k for k in kind if k not in KINDS):
        problems += _listed(
            ("kind",), rows, kind == name, kind, f"row(s) have kind {name!r}, which is "
            "neither entries nor occupancy", f"{did_you_mean(name, KINDS)}; {_KIND_HINT}", label,
        )  # fmt: skip
    segment = np.array([s.strip() for s in _text(table, "segment", "all")], dtype=object)
    problems += _listed(
        ("segment",), rows, segment == "", segment, "row(s) have no segment",
        "give every row its segment, or drop the segment column", label,
    )  # fmt: skip
    if problems:
        raise ScenarioError(problems, label)
    df = pd.DataFrame(
        {
            "period": pd.to_datetime(ns),
            "stage": stage,
            "kind": kind,
            "segment": segment,
            "count": count,
            "row": rows,
        }
    )
    problems = _coverage(df, funnel, latent, label) + _duplicates(df, label) + _grid(df, label)
    if problems:
        raise ScenarioError(problems, label)
    order = {s: k for k, s in enumerate(funnel)}
    seg_order = {s: k for k, s in enumerate(dict.fromkeys(df["segment"]))}
    df = df.assign(
        _s=df["stage"].map(order), _k=df["kind"].map(KINDS.index), _g=df["segment"].map(seg_order)
    )
    df = df.sort_values(["_s", "_k", "_g", "period"], kind="stable")
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
    label = str(path)
    header, body, first_row = _spend_table(path, label)
    if "date" not in header:
        close = difflib.get_close_matches("date", header, n=1, cutoff=0.5)
        hint = f"rename {close[0]!r} to `date`" if close else ""
        raise _error(
            ("date",), f"no `date` column (the file has: {', '.join(header)})",
            hint or "the first row names the columns: date,<campaign>,<campaign>...", label, 1,
        )  # fmt: skip
    names = [h for h in header if h and h != "date"]
    if not names:
        raise _error(
            ("columns",), "no campaign columns", "add one column of spend per campaign", label, 1
        )
    problems = _campaign_names(names, campaigns, label) if campaigns is not None else []
    rows = np.arange(first_row, first_row + len(body))
    formatted = np.array([len(r) > len(header) for r in body], dtype=bool)
    cells = [dict(zip(header, r)) for r in body]
    ns, bad = to_ns(pa.array([c.get("date", "").strip() for c in cells], pa.string()))
    bad = bad | ((ns % (86_400 * 10**9) != 0) & ~formatted)
    problems += _listed(
        ("date",), rows, bad & ~formatted, [c.get("date", "") for c in cells],
        "date(s) could not be read", "write YYYY-MM-DD, e.g. 2024-01-01", label,
    )  # fmt: skip
    problems += _listed(
        ("spend",), rows, formatted, [",".join(r) for r in body], "row(s) have more cells than "
        "columns: numbers written with thousands separators?", _PLAIN, label,
    )  # fmt: skip
    values = np.full((len(names), len(body)), np.nan)
    for c, name in enumerate(names):
        text = [cell.get(name, "").strip() for cell in cells]
        got = [None if f else _number(t) for t, f in zip(text, formatted)]
        values[c] = [np.nan if v is None else v for v in got]
        none = np.array([v is None for v in got]) & ~formatted
        dressed = np.array([_dressed(t) for t in text])
        for mask, what, hint in (
            (none & dressed, "written with currency signs or separators", _PLAIN),
            (none & ~dressed, "not numbers", "use plain numbers, 0 for no spend"),
            (values[c] < 0, "negative", "spend is zero or more"),
        ):
            problems += _listed(
                ("spend", name), rows, mask, text, f"value(s) in column {name!r} are {what}", hint, label
            )  # fmt: skip
    day = (ns // (86_400 * 10**9)).astype("datetime64[D]")
    if not bad.any() and not formatted.any():
        seen = pd.Series(rows).groupby(day).agg(list)
        twice = [(r[1], str(pd.Timestamp(d).date())) for d, r in seen.items() if len(r) > 1]
        problems += _listed(
            ("date",), np.array([r for r, _ in twice]), np.ones(len(twice), bool),
            [t for _, t in twice], "date(s) appear twice", "give one row per date", label,
        )  # fmt: skip
    if problems:
        raise ScenarioError(problems, label)
    return _daily(names, values, day, rows, dates, period_days, label)


def load_counts(
    counts_path: str | Path,
    spend_path: str | Path | None = None,
    *,
    stages: Sequence[str],
    columns: str | Mapping[str, str] | None = None,
    latent: Sequence[str] = (),
    campaigns: Sequence[str] | None = None,
) -> CountData:
    """Read and check the counts file (and the spend file) into :class:`CountData`."""
    df = read_counts(counts_path, stages=stages, columns=columns, latent=latent)
    dates = pd.DatetimeIndex(sorted(df["period"].unique()))
    period_days = int((dates[1] - dates[0]) / pd.Timedelta(days=1))
    funnel = tuple(s for s in stages if s != LOST)
    segments = tuple(dict.fromkeys(df["segment"]))
    series = tuple(dict.fromkeys(zip(df["stage"], df["kind"])))
    wide = df.pivot(index=["segment", "period"], columns=["stage", "kind"], values="count")
    wide = wide.reindex(
        index=pd.MultiIndex.from_product([segments, dates]),
        columns=pd.MultiIndex.from_tuples(series),
    )
    counts = wide.to_numpy(np.float64).reshape(len(segments), len(dates), len(series))
    if spend_path is not None:
        names, spend, start = read_count_spend(
            spend_path, dates=dates, period_days=period_days, campaigns=campaigns
        )
    elif campaigns:
        raise ScenarioError(
            [
                Problem(
                    ("--spend",),
                    f"the priors file declares campaigns ({', '.join(campaigns)}) but no spend "
                    "file is given",
                    "give the spend table with --spend SPEND.csv",
                )
            ],
            str(counts_path),
        )
    else:
        names, spend, start = (), np.zeros((0, len(dates) * period_days)), dates[0]
    return CountData(
        dates,
        period_days,
        funnel,
        segments,
        series,
        counts,
        names,
        spend,
        start,
        Path(counts_path).name,
    )


_PLAIN = (
    "write plain numbers without currency signs or thousands separators: 1150.50, not $1,150.50"
)


def _error(
    path: tuple[str | int, ...], message: str, hint: str, label: str, line: int | None = None
) -> ScenarioError:
    return ScenarioError([Problem(path, message, hint, file=label, line=line)], label)


def _listed(
    path: tuple[str | int, ...],
    rows: np.ndarray,
    mask: np.ndarray,
    values: Sequence[object],
    message: str,
    hint: str,
    label: str,
) -> list[Problem]:
    """One problem for all rows where ``mask`` holds (none when it holds nowhere)."""
    where = np.flatnonzero(mask)
    if not len(where):
        return []
    found = [(int(rows[k]), values[k]) for k in where[:5]]
    more = f" (and {len(where) - 5} more)" if len(where) > 5 else ""
    return [
        Problem(
            path, f"{len(where)} {message}: {shown_rows(found)}{more}", hint, label, found[0][0]
        )
    ]


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
    if theirs["count"] not in header or any(theirs[c] not in header for c in ("period", "stage")):
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
            row = row[:at] + [joined] + row[at + extra + 1 :]
            rejoined = True
        body[k] = row
    if not rejoined:
        return None
    cols = {
        c: [r[header.index(theirs[c])] if r else "" for r in body]
        for c in theirs
        if theirs[c] in header
    }
    return pa.table({c: pa.array(v, pa.string()) for c, v in cols.items()})


def _text(table: pa.Table, name: str, default: str) -> list[str]:
    if name not in table.column_names:
        return [default] * table.num_rows
    return [str(v) for v in table.column(name).cast(pa.string()).fill_null("").to_pylist()]


def _counts(
    column: pa.ChunkedArray, rows: np.ndarray, label: str
) -> tuple[np.ndarray, list[Problem]]:
    """Counts as floats, and the rows that are not whole numbers of zero or more."""
    if pa.types.is_integer(column.type) or pa.types.is_floating(column.type):
        got = [None if v is None else float(v) for v in column.to_pylist()]
        texts = [str(v) for v in column.to_pylist()]
    else:
        texts = [str(v or "").strip() for v in column.cast(pa.string()).to_pylist()]
        got = [_number(t) for t in texts]
    value = np.array([np.nan if v is None else v for v in got])
    missing = np.isnan(value)
    dressed = missing & np.array([_dressed(t) for t in texts])
    bits = [
        (dressed, "count(s) are written with thousands separators", "write plain whole numbers: 1234, not 1,234 or 1.234"),
        (missing & ~dressed, "count(s) are not numbers", "write whole numbers such as 1234 (0 when nothing was counted)"),
        (~missing & (value != np.round(value)), "count(s) are not whole numbers", "counts are whole numbers of people (1.234 for 1234? write 1234)"),
        (value < 0, "count(s) are negative", "counts are zero or more: check these rows (a correction entered as a negative count?)"),
    ]  # fmt: skip
    problems = [
        p for m, what, hint in bits for p in _listed(("count",), rows, m, texts, what, hint, label)
    ]
    return value, problems


def _coverage(
    df: pd.DataFrame, funnel: list[str], latent: Sequence[str], label: str
) -> list[Problem]:
    counted = set(df["stage"])
    missing = [s for s in funnel if s not in counted and s not in latent]
    problems = []
    if missing:
        problems.append(
            Problem(
                ("stage",),
                f"funnel stage(s) {', '.join(map(repr, missing))} have no counts (the file counts "
                f"{', '.join(s for s in funnel if s in counted)})",
                f"{_LATENT_HINT} (e.g. `latent: [{', '.join(missing)}]`), or add their counts",
                file=label,
            )
        )
    for s in latent:
        if s in counted:
            problems += _listed(
                ("latent",), df["row"].to_numpy(), (df["stage"] == s).to_numpy(), df["stage"].tolist(),
                f"row(s) count stage {s!r}, which the priors file lists under `latent:`",
                "remove it from `latent:` (the stage is counted), or drop its rows", label,
            )  # fmt: skip
    return problems


def _duplicates(df: pd.DataFrame, label: str) -> list[Problem]:
    keys = ["period", "stage", "kind", "segment"]
    dup = df[df.duplicated(keys, keep=False)]
    if dup.empty:
        return []
    groups = list(dup.groupby(keys, sort=False)["row"])
    shown = "; ".join(
        f"rows {', '.join(map(str, r))} ({p:%Y-%m-%d}, {s}, {k}, {g})"
        for (p, s, k, g), r in groups[:3]
    )
    more = f" (and {len(groups) - 3} more)" if len(groups) > 3 else ""
    return [
        Problem(
            ("rows",),
            f"{len(groups)} (period, stage, kind, segment) combination(s) appear on several rows: "
            f"{shown}{more}",
            "give one row per period, stage, kind and segment (add up parts of one count first)",
            label,
            int(groups[0][1].min()),
        )
    ]


def _grid(df: pd.DataFrame, label: str) -> list[Problem]:
    """Periods evenly spaced by 1 or 7 days, without gaps, in every series."""
    periods = np.unique(df["period"].to_numpy()).astype("datetime64[D]")
    if len(periods) < 2:
        return [
            Problem(
                ("period",), f"only one period ({periods[0]})", "give at least two periods", label
            )
        ]
    step = int(np.argmax(np.bincount((np.diff(periods) // _DAY).astype(int))))
    if step not in (1, 7):
        what = "monthly" if 28 <= step <= 31 else f"{step} days apart"
        return [
            Problem(
                ("period",),
                f"the periods are {what} (e.g. {periods[0]} then {periods[0] + step * _DAY}): "
                "funnelsim reads daily or weekly counts",
                "give one row per day or per week, on the date the period starts",
                label,
            )
        ]
    unit = "day" if step == 1 else "week"
    day = df["period"].to_numpy().astype("datetime64[D]")
    off = (((day - periods[0]) // _DAY) % step != 0) & ~pd.Series(day).duplicated().to_numpy()
    if off.any():
        return _listed(
            ("period",), df["row"].to_numpy(), off, [str(d) for d in day],
            f"period date(s) are not a whole number of weeks after the first ({periods[0]})",
            "weekly periods all start on the same weekday: give each period's start date", label,
        )  # fmt: skip
    grid = np.arange(periods[0], periods[-1] + _DAY, step * _DAY)
    gone = np.setdiff1d(grid, periods)
    problems = []
    if len(gone):
        problems.append(
            Problem(
                ("period",),
                f"the periods have gaps: no rows at all for {len(gone)} {unit}(s): {_dates(gone)}",
                _GAP_HINT,
                label,
            )
        )
    have = df.assign(day=day).groupby(["segment", "stage", "kind"], sort=False)["day"].agg(set)
    for g in dict.fromkeys(df["segment"]):
        for s, k in dict.fromkeys(zip(df["stage"], df["kind"])):
            lack = [d for d in grid if d not in gone and d not in have.get((g, s, k), set())]
            if lack:
                seg = f" (segment {g})" if g != "all" else ""
                problems.append(
                    Problem(
                        ("rows",),
                        f"series {s} {k}{seg} has no rows for {len(lack)} of the {len(grid)} "
                        f"{unit}s: {_dates(np.array(lack))}",
                        _GAP_HINT,
                        label,
                    )
                )
    return problems


def _dates(days: np.ndarray) -> str:
    return ", ".join(str(d) for d in days[:3]) + (" …" if len(days) > 3 else "")


def _campaign_names(names: list[str], campaigns: Sequence[str], label: str) -> list[Problem]:
    """A spend column that is not a declared campaign (a typo pairs it with the campaign it
    names, reported once), and declared campaigns without a column."""
    absent = [c for c in campaigns if c not in names]
    problems = []
    for name in (n for n in names if n not in campaigns):
        close = difflib.get_close_matches(name, absent, n=1, cutoff=0.6)
        absent = [c for c in absent if c not in close]
        hint = f"did you mean {close[0]!r}?" if close else did_you_mean(name, campaigns)
        problems.append(
            Problem(
                ("spend", name),
                f"spend column {name!r} is not a campaign of the priors file ({', '.join(campaigns)})",
                f"{hint}; declare it under `campaigns:` in the priors file, or drop the column",
                label,
                1,
            )
        )
    problems += [
        Problem(
            ("spend", c),
            f"campaign {c!r} of the priors file has no spend column",
            f"add a column {c} (spend per day or per period), or remove it from the priors file",
            label,
            1,
        )
        for c in absent
    ]
    return problems


def _spend_table(path: Path, label: str) -> tuple[list[str], list[list[str]], int]:
    """Header, rows (as text, trailing empty cells dropped) and the first row's number."""
    if not path.is_file():
        raise _error(("--spend",), f"spend file not found: {label}", "check the path", label)
    try:
        if path.suffix.lower() == ".parquet":
            frame = pd.read_parquet(path)
            header = [str(c) for c in frame.columns]
            body = [
                ["" if pd.isna(v) else str(v) for v in r] for r in frame.itertuples(index=False)
            ]
            first = 1
        else:
            with path.open(newline="", encoding="utf-8-sig") as handle:
                header, *body = list(csv.reader(handle)) or [[]]
            first = 2
    except (OSError, UnicodeDecodeError, csv.Error, ValueError, pa.ArrowException) as exc:
        raise _error(
            (), f"cannot read the file: {exc}", "save it as UTF-8 CSV or Parquet", label
        ) from None
    header = [h.strip() for h in header]
    if len(header) == 1 and ";" in header[0]:
        raise _error((), f"the file looks semicolon-separated (its first row is {header[0]!r})",
                     "save it as comma-separated CSV", label, 1)  # fmt: skip
    for k, row in enumerate(body):
        while len(row) > len(header) and not row[-1].strip():
            row = row[:-1]
        body[k] = row
    keep = [(k, r) for k, r in enumerate(body) if any(c.strip() for c in r)]
    if not header or not keep:
        raise _error(
            (), "the spend file has no rows", "one row per day or period: date,<campaign>...", label
        )
    if keep[-1][0] + 1 - keep[0][0] != len(keep):  # blank lines inside: keep numbering honest
        raise _error((), "the spend file has blank rows", "remove the empty rows", label)
    return header, [r for _, r in keep], first + keep[0][0]


def _daily(
    names: list[str],
    values: np.ndarray,
    day: np.ndarray,
    rows: np.ndarray,
    dates: pd.DatetimeIndex,
    period_days: int,
    label: str,
) -> tuple[tuple[str, ...], np.ndarray, pd.Timestamp]:
    """Per-day spend from daily or per-period rows, from the first row to the counts' end."""
    first = dates[0].to_datetime64().astype("datetime64[D]")
    end = first + len(dates) * period_days * _DAY  # the day after the last period
    order = np.argsort(day)
    day, values, rows = day[order], values[:, order], rows[order]
    step = (
        int(np.argmax(np.bincount((np.diff(day) // _DAY).astype(int))))
        if len(day) > 1
        else period_days
    )
    if step not in (1, period_days):
        raise _error(
            ("date",), f"the spend rows are {step} days apart",
            f"give one row per day, or one per period of the counts ({period_days} days) on its start date", label,
        )  # fmt: skip
    if step > 1:
        off = ((day - first) // _DAY) % step != 0
        if off.any():
            raise ScenarioError(_listed(
                ("date",), rows, off, [str(d) for d in day], f"date(s) are not the start of a "
                f"period of the counts (they start on {first} and every {step} days)",
                "give per-period spend on each period's start date, or one row per day", label,
            ), label)  # fmt: skip
    start = min(day[0], first)
    keep = day < end
    n_days = int((end - start) // _DAY)
    spend = np.full((len(names), n_days), np.nan)
    for k in np.flatnonzero(keep):
        at = int((day[k] - start) // _DAY)
        spend[:, at : at + step] = values[:, k : k + 1] / step
    lack = np.arange(start, end, step * _DAY)[np.isnan(spend[0, ::step])]
    if len(lack):
        what = "day" if step == 1 else "period"
        raise _error(
            ("date",), f"{len(lack)} {what}(s) have no spend row: {_dates(lack)}",
            f"give a row for every {what} from {start} to {end - _DAY} (0 where a campaign did not run)", label,
        )  # fmt: skip
    within = spend[:, int((first - start) // _DAY) :]
    idle = [n for n, total in zip(names, within.sum(axis=1)) if total == 0]
    problems = [
        Problem(
            ("spend", n),
            f"campaign {n!r} has zero spend in every period of the counts ({first} to {end - _DAY})",
            "its effect cannot be learned: drop the column or add the weeks it ran",
            label,
            1,
        )
        for n in idle
    ]
    if problems:
        raise ScenarioError(problems, label)
    return tuple(names), spend, pd.Timestamp(start)
