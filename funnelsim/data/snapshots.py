"""CRM snapshots (the stage of each customer at irregular dates) read and validated.

>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "crm.csv"
>>> _ = path.write_text("customer_id,date,stage\\na,2026-01-01,lead\\na,2026-02-01,won\\n"
...                     "b,2026-01-03,lead\\nb,2026-01-20,lead\\n")
>>> read_snapshots(path)[["customer_id", "stage"]].values.tolist()
[['a', 'lead'], ['a', 'won'], ['b', 'lead'], ['b', 'lead']]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from funnelsim.data.events import (
    _bad_values_error,
    _ids,
    _mismatch,
    _stage_codes,
    _unmapped_error,
    open_table,
    shown_rows,
    to_ns,
)
from funnelsim.data.stagemap import SNAPSHOT_COLUMNS, parse_columns, read_stage_map
from funnelsim.errors import Problem, ScenarioError
from funnelsim.funnel import LOST

__all__ = ["read_snapshots"]


def read_snapshots(
    path: str | Path,
    *,
    columns: str | Mapping[str, str] | None = None,
    stage_map: str | Path | Mapping[str, str | None] | None = None,
    stages: Sequence[str] | None = None,
) -> pd.DataFrame:
    """``customer_id, date (datetime64), stage[, segment]`` sorted by customer and date.

    Rows repeated exactly are kept once. Raises :class:`ScenarioError` for missing
    columns, unreadable dates (with row numbers), a customer in two stages at one time,
    a file where no customer has two dates, stages not in ``stages``, or nothing left
    after the stage map. Unmapped raw stage names are counted in ``df.attrs["unmapped"]``.
    """
    path = Path(path)
    label = str(path)
    canon = parse_columns(columns, "snapshots")
    smap = read_stage_map(stage_map) if isinstance(stage_map, str | Path) else stage_map
    known = set(stages or ()) | {v for v in (smap or {}).values() if v} | {LOST}
    parts: list[pa.RecordBatch] = []
    first_row = 2
    for batch, first, _, _ in open_table(path, canon, SNAPSHOT_COLUMNS, "snapshots", 1 << 22):
        first_row = first if not parts else first_row
        parts.append(batch)
    table = pa.Table.from_batches(parts)
    rows = np.arange(first_row, first_row + table.num_rows)
    ns, bad = to_ns(table.column("date"))
    if bad.any():
        texts = table.column("date").filter(pa.array(bad)).to_pylist()
        raise _bad_values_error(
            list(zip(rows[bad].tolist(), texts))[:5], int(bad.sum()), "date", label
        )
    ids, empty = _ids(table.column("customer_id"))
    if empty.any():
        found = [(int(r), "") for r in rows[empty][:5]]
        raise _bad_values_error(found, int(empty.sum()), "customer_id", label)
    labels: dict[str, list[str]] = {"stage": [], "segment": [], "channel": []}
    unmapped: dict[str, int] = {}
    code, keep = _stage_codes(table.column("stage"), smap, known, labels, unmapped)
    if not keep.any():
        raise _unmapped_error(unmapped, smap, label)
    df = pd.DataFrame(
        {
            "customer_id": ids,
            "date": pd.to_datetime(ns),
            "stage": np.array(labels["stage"], dtype=object)[np.maximum(code, 0)],
            "row": rows,
        }
    )
    if "segment" in table.column_names:
        df["segment"] = table.column("segment").cast(pa.string()).to_pandas()
    df = df[keep]
    data_stages = list(dict.fromkeys(s for s in labels["stage"] if s != LOST))
    if stages is not None:
        extra = [s for s in data_stages if s not in stages]
        if extra:
            raise ScenarioError([_mismatch(extra, data_stages, stages, label)], label)
    df = df.sort_values(["customer_id", "date", "row"], kind="stable")
    df = df.drop_duplicates(["customer_id", "date", "stage"])
    clash = df.duplicated(["customer_id", "date"], keep=False)
    if clash.any():
        shown = df[clash].head(6)
        first = shown.iloc[0]
        found = [
            (int(r), f"{c} {d:%Y-%m-%d %H:%M} {s}")
            for r, c, d, s in zip(shown.row, shown.customer_id, shown.date, shown.stage)
        ]
        n = int(df[clash][["customer_id", "date"]].drop_duplicates().shape[0])
        raise ScenarioError(
            [
                Problem(
                    ("rows",),
                    f"{n} time(s) where a customer is in two stages at once, first customer "
                    f"{first.customer_id!r}: {shown_rows(found)}",
                    "give one stage per customer and date (keep the latest export's row)",
                    file=label,
                    line=int(first.row),
                )
            ],
            label,
        )
    per = df.groupby("customer_id", sort=False).size()
    if (per < 2).all():
        raise ScenarioError(
            [
                Problem(
                    ("rows",),
                    f"every customer has a single row ({len(per)} customers): snapshots need "
                    "at least two dates per customer to show movement",
                    "export the stage of each customer at several dates (one row per "
                    "customer and date), not only the latest",
                    file=label,
                )
            ],
            label,
        )
    out = df.drop(columns="row").reset_index(drop=True)
    out.attrs["unmapped"] = unmapped
    return out
