"""Event logs (CSV or Parquet, one row per stage entry) reduced to :class:`JourneyStats`
in chunks of bounded memory: each chunk is summarised (the map), summaries are combined
in file order (an associative combine), and the result is finished into sufficient
statistics — the same numbers as :func:`~funnelsim.inference.stats.journey_stats` on the
whole file.

>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "log.csv"
>>> _ = path.write_text("user,ts,event\\n1,2026-01-01,visit\\n1,2026-01-02T12:00:00,buy\\n"
...                     "2,2026-01-02,visit\\n")
>>> s = read_events(path, columns="customer_id=user,timestamp=ts,stage=event",
...                 stage_map={"visit": "awareness", "buy": "conversion"})
>>> s.stages, s.n_customers, int(s.transitions.sum())
(('awareness', 'conversion', 'lost'), 2, 1)
"""

from __future__ import annotations

import csv
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from funnelsim.data.stagemap import EVENT_COLUMNS, columns_hint, parse_columns, read_stage_map
from funnelsim.errors import Problem, ScenarioError, did_you_mean
from funnelsim.funnel import LOST
from funnelsim.inference.stats import (
    ChunkSummary,
    JourneyOrderError,
    JourneyStats,
    bin_width_ns,
    combine,
    finish,
    summarize_chunk,
)

__all__ = ["read_events", "open_table", "to_ns", "shown_rows"]

Progress = Callable[[int, int, int], None]
_SHOWN = 5  # rows listed in a message about many rows


def read_events(
    path: str | Path,
    *,
    columns: str | Mapping[str, str] | None = None,
    stage_map: str | Path | Mapping[str, str | None] | None = None,
    stages: Sequence[str] | None = None,
    end: str | pd.Timestamp | None = None,
    period_days: float = 1.0,
    chunk_rows: int = 1_000_000,
    progress: Progress | None = None,
    rows: list[tuple[np.ndarray, np.ndarray, np.ndarray]] | None = None,
    until: pd.Timestamp | None = None,
) -> JourneyStats:
    """Read an event log (``.csv`` or ``.parquet``) into :class:`JourneyStats`.

    ``columns`` maps canonical names (``customer_id, timestamp, stage[, segment,
    channel]``) to the file's; ``stage_map`` (a YAML path or a dict) maps raw event names
    to stages (None drops the rows; names neither in the map nor stage names are counted
    in ``unmapped`` and skipped). ``stages`` is the journey order (``lost`` is added
    last); without it an order is derived from the data: the stage where most customers
    first appear, then repeatedly the stage most entered from the stages placed so far
    (ties in the stage map's order). ``end`` defaults to the last timestamp.
    ``progress(rows_done, bytes_done, total_bytes)`` is called after each chunk. With a
    list as ``rows``, the rows kept are also appended to it, one ``(customer ids,
    timestamps in ns, stage names)`` tuple per chunk (per-customer models need them).
    ``until`` drops the rows after it and ends the data there (a backtest's cutoff).

    Each customer's rows must be in time order in the file; every problem with the data
    raises :class:`ScenarioError` naming the file and rows (CSV rows count the header as
    row 1; Parquet rows count from 1).
    """
    path = Path(path)
    label = str(path)
    canon = parse_columns(columns, "events")
    smap = read_stage_map(stage_map) if isinstance(stage_map, str | Path) else stage_map
    known = set(stages or ()) | {v for v in (smap or {}).values() if v} | {LOST}
    bin_ns = bin_width_ns(period_days) if period_days > 0 else 0
    if bin_ns < 60 * 10**9:
        raise ScenarioError(
            [
                Problem(
                    ("period_days",),
                    f"periods of {period_days!r} days cannot be used",
                    "give a positive whole number of minutes, hours or days (1 = daily, "
                    "7 = weekly, 1/24 = hourly)",
                )
            ],
            label,
        )
    end_ts = None if end is None else _timestamp(end, label)
    until_ns = None
    if until is not None:
        end_ts = _timestamp(until, label)
        until_ns = int(end_ts.value)

    labels: dict[str, list[str]] = {"stage": [], "segment": [], "channel": []}
    stack: list[tuple[int, ChunkSummary]] = []  # pairwise tree of combines, in file order
    bad: dict[str, tuple[list[tuple[int, object]], list[int]]] = {
        "timestamp": ([], [0]),
        "customer_id": ([], [0]),
    }  # kind → (first rows and values, [total])
    unmapped: dict[str, int] = {}
    rows_done = 0
    table = open_table(path, canon, EVENT_COLUMNS, "events", chunk_rows)
    for batch, first_row, bytes_done, total_bytes in table:
        n = batch.num_rows
        row = np.arange(first_row, first_row + n, dtype=np.int64)
        ns, bad_ts = to_ns(batch.column("timestamp"))
        ids, bad_id = _ids(batch.column("customer_id"))
        for kind, mask in (("timestamp", bad_ts), ("customer_id", bad_id)):
            if mask.any():
                found, total = bad[kind]
                total[0] += int(mask.sum())
                texts = batch.column(kind).filter(pa.array(mask)).to_pylist()
                found += list(zip(row[mask].tolist(), texts))[: _SHOWN - len(found)]
        stage_code, keep = _stage_codes(batch.column("stage"), smap, known, labels, unmapped)
        keep &= ~(bad_ts | bad_id)
        if until_ns is not None:
            keep &= ns <= until_ns
        if any(total[0] for _, total in bad.values()):  # reading on only to count them
            rows_done += n
            if progress is not None:
                progress(rows_done, bytes_done, total_bytes)
            continue
        seg = _codes(batch, "segment", labels["segment"], "all")
        chan = _codes(batch, "channel", labels["channel"], "direct")
        try:
            part = summarize_chunk(
                ids[keep],
                ns[keep],
                stage_code[keep],
                seg[keep],
                chan[keep],
                row[keep],
                stages=labels["stage"],
                segments=labels["segment"],
                channels=labels["channel"],
                bin_ns=bin_ns,
            )
            _push(stack, part)
            if rows is not None:
                names = np.asarray(labels["stage"], dtype=object)
                rows.append((ids[keep], ns[keep], names[stage_code[keep]]))
        except JourneyOrderError as exc:
            raise _order_error(exc, label) from None
        rows_done += n
        if progress is not None:
            progress(rows_done, bytes_done, total_bytes)
    for kind, (found, total) in bad.items():
        if total[0]:
            raise _bad_values_error(found, total[0], kind, label)
    acc = None
    try:
        for _, part in stack:
            acc = part if acc is None else combine(acc, part)
    except JourneyOrderError as exc:
        raise _order_error(exc, label) from None
    if acc is None or acc.n_events == 0:
        if unmapped:
            raise _unmapped_error(unmapped, smap, label)
        raise ScenarioError(
            [
                Problem(
                    (), "the event log has no events", "give one row per stage entry", file=label
                )
            ],
            label,
        )
    data_stages = [s for s in acc.stages if s != LOST]
    if stages is not None:
        extra = [s for s in data_stages if s not in stages]
        if extra:
            raise ScenarioError([_mismatch(extra, data_stages, stages, label)], label)
        order = list(stages)
    else:
        order = _derived_order(acc, smap)
    last = pd.Timestamp(int(acc.tails.ns.max()))
    if end_ts is not None and end_ts < last:
        raise ScenarioError(
            [
                Problem(
                    ("end",),
                    f"the end of the data ({end_ts}) is before the last event ({last})",
                    "give an end at or after the last timestamp, or leave it out",
                    file=label,
                )
            ],
            label,
        )
    stats = finish(acc, order, end=end_ts, period_days=period_days)
    return JourneyStats(**{**stats.__dict__, "unmapped": dict(unmapped)})


def _timestamp(value: str | pd.Timestamp, label: str) -> pd.Timestamp:
    """``end`` as a naive timestamp (UTC when it carries a zone)."""
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError):
        ts = pd.NaT
    if pd.isna(ts):
        raise ScenarioError(
            [Problem(("end",), f"{value!r} is not a date", "write YYYY-MM-DD or YYYY-MM-DDTHH:MM")],
            label,
        )
    return ts.tz_convert("UTC").tz_localize(None) if ts.tzinfo is not None else ts


def _push(stack: list[tuple[int, ChunkSummary]], part: ChunkSummary) -> None:
    """Add the next chunk's summary; combine neighbours of equal depth (a binary counter),
    so each row's customer arrays are copied O(log chunks) times, not once per chunk."""
    level = 0
    while stack and stack[-1][0] == level:
        part = combine(stack.pop()[1], part)
        level += 1
    stack.append((level, part))


def open_table(
    path: Path, canon: Mapping[str, str], known: Mapping[str, bool], kind: str, chunk_rows: int
) -> Iterator[tuple[pa.RecordBatch, int, int, int]]:
    """Check the file's columns, then yield ``(batch, first file row, bytes done, total
    bytes)`` with canonical column names, text columns as strings, ``chunk_rows`` rows at
    most per batch (a quarter more to avoid tiny remainders)."""
    label = str(path)
    if not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else "not found"
        raise ScenarioError(
            [Problem((), f"file {what}: {path}", "check the path", file=label)], label
        )
    if path.suffix.lower() not in (".csv", ".parquet"):
        raise ScenarioError(
            [Problem((), "the file must end in .csv or .parquet", "", file=label)], label
        )
    total = path.stat().st_size
    is_csv = path.suffix.lower() == ".csv"
    try:
        if is_csv:
            with path.open(newline="", encoding="utf-8-sig") as handle:
                header = next(csv.reader(handle), [])
        else:
            pf = pq.ParquetFile(path)
            header = list(pf.schema_arrow.names)
    except (OSError, UnicodeDecodeError, csv.Error, pa.ArrowException) as exc:
        raise _unreadable(exc, label) from None
    if is_csv and len(header) == 1 and ";" in header[0]:
        raise ScenarioError(
            [
                Problem(
                    (),
                    f"the file looks semicolon-separated (its first row is {header[0]!r})",
                    "save it as comma-separated CSV",
                    file=label,
                    line=1,
                )
            ],
            label,
        )
    if not header or total == 0:
        raise ScenarioError(
            [Problem((), "the file is empty", columns_hint(kind), file=label)], label
        )
    theirs = {c: canon.get(c, c) for c in known}
    missing = [c for c, req in known.items() if req and theirs[c] not in header]
    if missing:
        raise _missing_columns(missing, theirs, header, kind, label)
    use = {c: theirs[c] for c in known if theirs[c] in header}
    rename = {v: k for k, v in use.items()}
    if is_csv:
        stream = pa.OSFile(str(path))
        try:
            reader = pacsv.open_csv(
                stream,
                read_options=pacsv.ReadOptions(block_size=_block_size(path, chunk_rows)),
                convert_options=pacsv.ConvertOptions(
                    column_types={v: pa.string() for v in use.values()},
                    include_columns=list(use.values()),
                ),
            )
        except pa.ArrowException as exc:
            raise _arrow_error(exc, path, len(header)) from None
        batches: Iterator[pa.RecordBatch] = iter(reader)
        where: Callable[[], int] = stream.tell
        base = 2
    else:
        batches = pf.iter_batches(batch_size=chunk_rows, columns=list(use.values()))
        rows_total = max(pf.metadata.num_rows, 1)
        base = 1
    done = 0
    while True:
        try:
            big = next(batches)
        except StopIteration:
            break
        except pa.ArrowException as exc:
            raise _arrow_error(exc, path, len(header)) from None
        big = big.rename_columns([rename[c] for c in big.schema.names])
        pieces = max(-(-big.num_rows // int(chunk_rows * 1.25)), 1)  # no tiny remainders
        size = -(-big.num_rows // pieces)
        for k in range(0, big.num_rows, size):
            batch = big.slice(k, size)
            done_bytes = where() if is_csv else int(total * (done + batch.num_rows) / rows_total)
            yield batch, base + done, min(done_bytes, total), total
            done += batch.num_rows
    if done == 0:
        raise ScenarioError(
            [Problem((), "the file has a header but no rows", columns_hint(kind), file=label)],
            label,
        )


def _arrow_error(exc: Exception, path: Path, width: int) -> ScenarioError:
    if path.suffix.lower() == ".csv" and "columns, got" in str(exc):
        return _ragged_rows(path, width)
    return _unreadable(exc, str(path))


def _unreadable(exc: Exception, label: str) -> ScenarioError:
    return ScenarioError(
        [
            Problem(
                (),
                f"cannot read the file: {exc}",
                "save it as UTF-8 CSV with a header row, or as Parquet",
                file=label,
            )
        ],
        label,
    )


def _ragged_rows(path: Path, width: int) -> ScenarioError:
    """Rows whose number of cells differs from the header's (found on the error path)."""
    found: list[tuple[int, object]] = []
    total = 0
    with path.open(newline="", encoding="utf-8-sig") as handle:
        for number, cells in enumerate(csv.reader(handle), start=1):
            if cells and len(cells) != width:
                total += 1
                if len(found) < _SHOWN:
                    found.append((number, ",".join(cells)))
    more = f" (and {total - len(found)} more)" if total > len(found) else ""
    return ScenarioError(
        [
            Problem(
                ("rows",),
                f"{total} row(s) do not have the header's {width} cells: {shown_rows(found)}{more}",
                "quote values that contain commas; give every row the same columns",
                file=str(path),
                line=found[0][0] if found else None,
            )
        ],
        str(path),
    )


def _block_size(path: Path, chunk_rows: int) -> int:
    """CSV bytes per read block: about ``chunk_rows`` rows, from 1 MB to 256 MB."""
    with path.open("rb") as handle:
        head = handle.read(1 << 16)
    per_row = len(head) / max(head.count(b"\n"), 1)
    return int(min(max(per_row * chunk_rows * 1.1, 1 << 20), 1 << 28))


def to_ns(column: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """ISO dates or date-times → (int64 ns since the epoch, naive or converted to UTC;
    mask of values that could not be read).

    >>> ns, bad = to_ns(pa.array(["2026-03-01", "2026-03-01 10:15:00+02:00", "soon"]))
    >>> pd.to_datetime(ns[:2]).tolist(), bad.tolist()
    ([Timestamp('2026-03-01 00:00:00'), Timestamp('2026-03-01 08:15:00')], [False, False, True])
    """
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if pa.types.is_timestamp(arr.type) or pa.types.is_date(arr.type):
        if pa.types.is_timestamp(arr.type) and arr.type.tz is not None:
            arr = arr.cast(pa.timestamp(arr.type.unit, "UTC"))
        out = arr.cast(pa.timestamp("ns", getattr(arr.type, "tz", None))).cast(pa.int64())
        bad = out.is_null().to_numpy(zero_copy_only=False)
        return out.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64), bad
    arr = arr.cast(pa.string())
    for tz in (None, "UTC"):
        try:
            out = pc.cast(arr, pa.timestamp("ns", tz)).cast(pa.int64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
        if out.null_count == 0:
            return out.to_numpy(zero_copy_only=False).astype(np.int64), np.zeros(len(arr), bool)
        break
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parsed = pd.to_datetime(
            pd.Series(arr.to_pandas(), dtype=object), format="ISO8601", utc=True, errors="coerce"
        )
    bad = parsed.isna().to_numpy()
    ns = parsed.dt.tz_localize(None).to_numpy(dtype="datetime64[ns]").astype(np.int64)
    return np.where(bad, 0, ns), bad


def _ids(column: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Customer ids as int64 when every one is a plain integer, else as text; and a mask
    of empty ids."""
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    empty = arr.is_null().to_numpy(zero_copy_only=False)
    if pa.types.is_integer(arr.type):
        return arr.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64), empty
    arr = arr.cast(pa.string()).fill_null("")
    empty = empty | pc.equal(pc.utf8_trim_whitespace(arr), "").to_numpy(zero_copy_only=False)
    try:
        ints = pc.cast(arr, pa.int64())
        if pc.all(pc.equal(ints.cast(pa.string()), arr)).as_py():
            return ints.to_numpy(zero_copy_only=False), empty
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    return arr.to_numpy(zero_copy_only=False), empty


def _codes(batch: pa.RecordBatch, name: str, labels: list[str], default: str) -> np.ndarray:
    """Codes of a text column into ``labels`` (extended with new values in place)."""
    if name not in batch.schema.names:
        if not labels:
            labels.append(default)
        return np.zeros(batch.num_rows, dtype=np.int64)
    enc = batch.column(name).cast(pa.string()).fill_null("").dictionary_encode()
    values = enc.dictionary.to_pylist()
    for v in values:
        if v not in labels:
            labels.append(v)
    lookup = np.array([labels.index(v) for v in values], dtype=np.int64)
    return lookup[enc.indices.to_numpy(zero_copy_only=False)]


def _stage_codes(
    column: pa.ChunkedArray | pa.Array,
    smap: Mapping[str, str | None] | None,
    known: set[str],
    labels: dict[str, list[str]],
    unmapped: dict[str, int],
) -> tuple[np.ndarray, np.ndarray]:
    """Stage codes into ``labels["stage"]`` and a mask of rows kept (mapped, not ignored)."""
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    enc = arr.cast(pa.string()).fill_null("").dictionary_encode()
    names = enc.dictionary.to_pylist()
    idx = enc.indices.to_numpy(zero_copy_only=False)
    counts = np.bincount(idx, minlength=len(names))
    lookup = np.full(len(names), -1, dtype=np.int64)
    stage_labels = labels["stage"]
    for k, raw in enumerate(names):
        if smap is not None and raw in smap:
            target = smap[raw]
        elif smap is None and raw.strip():
            target = raw
        elif raw in known:
            target = raw
        else:
            if counts[k]:
                key = raw or "(empty)"
                unmapped[key] = unmapped.get(key, 0) + int(counts[k])
            continue
        if target is None:
            continue
        if target not in stage_labels:
            stage_labels.append(target)
        lookup[k] = stage_labels.index(target)
    codes = lookup[idx]
    return codes, codes >= 0


def _derived_order(acc: ChunkSummary, smap: Mapping[str, str | None] | None) -> list[str]:
    names = [s for s in acc.stages if s != LOST]
    if not names:
        return []
    pos = {s: k for k, s in enumerate(dict.fromkeys(v for v in (smap or {}).values() if v))}
    rank = [pos.get(s, len(pos) + k) for k, s in enumerate(names)]
    idx = [acc.stages.index(s) for s in names]
    flow = acc.transitions.sum(axis=(0, 3))[np.ix_(idx, idx)].astype(float)
    np.fill_diagonal(flow, 0.0)
    first = np.bincount(acc.heads.stage, minlength=len(acc.stages))[idx].astype(float)
    placed: list[int] = []
    left = list(range(len(names)))
    while left:
        score = [first[k] if not placed else flow[placed, k].sum() for k in left]
        best = max(left, key=lambda k: (score[left.index(k)], -rank[k]))
        placed.append(best)
        left.remove(best)
    return [names[k] for k in placed]


def shown_rows(found: Sequence[tuple[int, object]]) -> str:
    """``row 5 ('x'), row 9 ('y')``: the first few of many rows."""
    return ", ".join(f"row {r} ({v!r})" for r, v in found[:_SHOWN])


_BAD_HINTS = {
    "timestamp": "write ISO dates or date-times: 2026-03-01, 2026-03-01T10:15:00 or "
    "2026-03-01 10:15:00+00:00",
    "date": "write ISO dates: 2026-03-01 (or date-times such as 2026-03-01T10:15:00)",
    "customer_id": "every row needs the customer it belongs to",
}


def _bad_values_error(
    found: Sequence[tuple[int, object]], total: int, what: str, label: str
) -> ScenarioError:
    more = f" (and {total - len(found)} more; {total} in all)" if total > len(found) else ""
    problem = "could not be read" if what != "customer_id" else "are empty"
    if total == 1:
        problem = problem.replace("are", "is")
    return ScenarioError(
        [
            Problem(
                (what,),
                f"{total} {what}{'s' if total != 1 else ''} {problem}: {shown_rows(found)}{more}",
                _BAD_HINTS[what],
                file=label,
                line=found[0][0],
            )
        ],
        label,
    )


def _missing_columns(
    missing: list[str], theirs: Mapping[str, str], header: list[str], kind: str, label: str
) -> ScenarioError:
    names = ", ".join(f"{theirs[c]!r}" + (f" (for {c})" if theirs[c] != c else "") for c in missing)
    hints = [did_you_mean(theirs[c], header) for c in missing]
    close = "; ".join(f"{theirs[c]!r}: {h}" for c, h in zip(missing, hints) if h.startswith("did"))
    if kind == "events" and "timestamp" in missing and "date" in header:
        close = (
            "a `date` column and no `timestamp`: is this a CRM snapshot file? use --kind snapshots"
        )
    return ScenarioError(
        [
            Problem(
                ("columns",),
                f"no column {names} (the file has: {', '.join(header)})",
                (close + "; " if close else "") + columns_hint(kind),
                file=label,
                line=1,
            )
        ],
        label,
    )


def _order_error(exc: JourneyOrderError, label: str) -> ScenarioError:
    if exc.kind == "order":
        message = (
            f"customer {exc.customer!r}: the event on row {exc.row_after} is earlier than "
            f"the one on row {exc.row_before}"
        )
        hint = "sort the file by time, or by customer then time"
    else:
        message = (
            f"customer {exc.customer!r}: segment on row {exc.row_after} differs from row "
            f"{exc.row_before}"
        )
        hint = "a customer belongs to one segment: give the same segment on all their rows"
    return ScenarioError([Problem(("rows",), message, hint, file=label, line=exc.row_after)], label)


def _unmapped_error(unmapped: Mapping[str, int], smap: object, label: str) -> ScenarioError:
    top = sorted(unmapped.items(), key=lambda kv: -kv[1])[:_SHOWN]
    names = ", ".join(f"{k!r} ({v} rows)" for k, v in top)
    hint = (
        "add these names to the stage map (`event_name: stage`)"
        if smap is not None
        else "give a stage map (--stage-map MAP.yaml) from raw event names to stages"
    )
    return ScenarioError(
        [
            Problem(
                ("stage",), f"no event maps to a stage; unmapped names: {names}", hint, file=label
            )
        ],
        label,
    )


def _mismatch(extra: list[str], data: list[str], stages: Sequence[str], label: str) -> Problem:
    return Problem(
        ("stage",),
        f"the funnel's stages do not match the data: {', '.join(map(repr, extra))} "
        f"{'is' if len(extra) == 1 else 'are'} in the data but not in the funnel "
        f"(funnel: {', '.join(stages)}; data: {', '.join(data)})",
        "add the stages to the funnel, or map these event names in the stage map "
        "(`name: stage`, or `name: ignore` to drop them)",
        file=label,
    )
