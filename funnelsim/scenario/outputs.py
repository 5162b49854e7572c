"""Write a run's files atomically: into a temporary folder, then renamed into place.

An existing output folder is replaced whole or not at all: if anything fails while
writing, the old folder is left exactly as it was.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pandas as pd
import yaml

from funnelsim.results import SimulationResult

__all__ = ["write_outputs", "atomic_folder", "write_table"]


class atomic_folder:
    """Context manager yielding a temporary folder that replaces ``target`` on success."""

    def __init__(self, target: str | Path) -> None:
        self.target = Path(target)
        self.tmp = self.target.parent / f".{self.target.name}.tmp-{uuid.uuid4().hex[:8]}"

    def __enter__(self) -> Path:
        if self.target.exists() and not self.target.is_dir():
            raise FileExistsError(f"{self.target} exists and is not a folder")
        self.target.parent.mkdir(parents=True, exist_ok=True)
        self.tmp.mkdir()
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            return
        old = None
        if self.target.exists():
            old = self.target.parent / f".{self.target.name}.old-{uuid.uuid4().hex[:8]}"
            os.replace(self.target, old)
        try:
            os.replace(self.tmp, self.target)
        except OSError:
            if old is not None:
                os.replace(old, self.target)
            shutil.rmtree(self.tmp, ignore_errors=True)
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def write_table(table: pd.DataFrame, path: str | Path) -> Path:
    """Write a table as CSV or Parquet (by suffix), atomically: a temporary file in the
    same folder, renamed into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        if path.suffix == ".parquet":
            table.to_parquet(tmp, index=False)
        else:
            table.to_csv(tmp, index=False, float_format="%.10g", date_format="%Y-%m-%dT%H:%M:%S.%f")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_outputs(
    result: SimulationResult,
    out_dir: str | Path,
    resolved: dict | None = None,
    plots: bool = True,
) -> Path:
    """Write ``summary.csv``, ``summary_by_channel.csv``, ``summary_by_segment.csv``,
    ``summary_queues.csv`` (capacity stages), ``timeseries.csv``, ``results.nc``, plots,
    ``report.html`` and ``scenario.resolved.yaml`` into ``out_dir`` (atomically).
    Returns the folder."""
    out_dir = Path(out_dir)
    with atomic_folder(out_dir) as tmp:
        result.summary().to_csv(tmp / "summary.csv", index=False, float_format="%.10g")
        result.timeseries().to_csv(tmp / "timeseries.csv", index=False, float_format="%.10g")
        for dim in ("channel", "segment"):
            result.summary_by(dim).to_csv(
                tmp / f"summary_by_{dim}.csv", index=False, float_format="%.10g"
            )
        queues = result.summary_queues()
        if queues is not None:
            queues.to_csv(tmp / "summary_queues.csv", index=False, float_format="%.10g")
        result.to_netcdf(tmp / "results.nc")
        if resolved is not None:
            text = yaml.safe_dump(resolved, sort_keys=False, allow_unicode=True)
            (tmp / "scenario.resolved.yaml").write_text(text, encoding="utf-8")
        drawn = []
        if plots:
            from funnelsim.report.plots import save_standard_plots

            drawn = save_standard_plots(result, tmp / "plots")
        from funnelsim.report.html import write_report

        write_report(result, tmp, drawn)
    return out_dir
