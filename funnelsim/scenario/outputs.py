"""Write a run's files: tables, results.nc, plots, report.html and a runnable
``scenario.resolved.yaml``, through :class:`funnelsim.io.atomic_folder` (an earlier
output folder is replaced whole or not at all; a folder holding a user's files is
refused, or with ``force`` written into without touching them).
"""

from __future__ import annotations

import copy
import shutil
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import yaml

from funnelsim import __version__
from funnelsim.io import OutputRefused, atomic_folder, check_output_folder, write_file
from funnelsim.results import SimulationResult

__all__ = [
    "write_outputs",
    "atomic_folder",
    "check_output_folder",
    "check_outputs",
    "write_table",
    "resolved_text",
    "OutputRefused",
]

RESOLVED = "scenario.resolved.yaml"
INPUTS = "inputs"
#: the files every run writes (plots and inputs vary): checked before a run starts
RUN_FILES = (
    "summary.csv",
    "summary_by_channel.csv",
    "summary_by_segment.csv",
    "summary_queues.csv",
    "timeseries.csv",
    "results.nc",
    "report.html",
    RESOLVED,
)


def check_outputs(out_dir: str | Path, *, force: bool = False) -> str:
    """Whether :func:`write_outputs` may write ``out_dir`` (see
    :func:`funnelsim.io.check_output_folder`): call it before a long run to refuse early.
    Raises :class:`~funnelsim.io.OutputRefused`; writes nothing."""
    return check_output_folder(out_dir, force=force, by="run", names=RUN_FILES)


def write_table(table: pd.DataFrame, path: str | Path, *, by: str = "simulate") -> Path:
    """Write a table as CSV or Parquet (by suffix), atomically, never over a file
    funnelsim did not write (see :func:`funnelsim.io.write_file`). Returns the path."""

    def write(tmp: Path) -> None:
        if Path(path).suffix == ".parquet":
            table.to_parquet(tmp, index=False)
        else:
            table.to_csv(tmp, index=False, float_format="%.10g", date_format="%Y-%m-%dT%H:%M:%S.%f")

    return write_file(path, write, by=by)


def spend_specs(data: dict) -> Iterator[dict]:
    """Every campaign ``spend`` mapping with a ``csv`` key in a scenario mapping: the
    baseline's and those in variant patches."""
    plans = [data.get("baseline") or {}, *(data.get("variants") or {}).values()]
    for plan in plans:
        for campaign in ((plan or {}).get("campaigns") or {}).values():
            spend = (campaign or {}).get("spend")
            if isinstance(spend, dict) and isinstance(spend.get("csv"), str):
                yield spend


def resolved_text(resolved: dict, folder: Path) -> str:
    """``scenario.resolved.yaml`` for an output ``folder``: spend CSVs (and a fit) are copied into
    ``folder/inputs/`` and named relative to it, so the file runs as it is from the
    folder, wherever the folder is moved; the version is a comment."""
    data = copy.deepcopy(resolved)
    copies: dict[Path, str] = {}
    for spend in spend_specs(data):
        source = Path(spend["csv"])
        if not source.is_file():
            continue  # cannot happen for a scenario that ran; leave it as it was
        source = source.resolve()
        if source not in copies:
            name, k = source.name, 1
            while f"{INPUTS}/{name}" in copies.values():
                k += 1
                name = f"{source.stem}-{k}{source.suffix}"
            copies[source] = f"{INPUTS}/{name}"
            (folder / INPUTS).mkdir(exist_ok=True)
            shutil.copyfile(source, folder / copies[source])
        spend["csv"] = copies[source]
    fit = Path(data["fit"]) if isinstance(data.get("fit"), str) else None
    if fit is not None and fit.is_file():  # the fit is an input too: copied beside
        (folder / INPUTS).mkdir(exist_ok=True)
        shutil.copyfile(fit, folder / INPUTS / fit.name)
        data["fit"] = f"{INPUTS}/{fit.name}"
    head = (
        f"# funnelsim {__version__}: exactly what ran (seed, replicates, engine and clock\n"
        f"# step included). Run it again, as it is: funnelsim run {RESOLVED}\n"
    )
    return head + yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def write_outputs(
    result: SimulationResult,
    out_dir: str | Path,
    resolved: dict | None = None,
    plots: bool = True,
    *,
    force: bool = False,
) -> Path:
    """Write ``summary.csv``, ``summary_by_channel.csv``, ``summary_by_segment.csv``,
    ``summary_queues.csv`` (capacity stages), ``timeseries.csv``, ``results.nc``, plots,
    ``report.html`` and ``scenario.resolved.yaml`` (with its spend CSVs in ``inputs/``)
    into ``out_dir``, atomically, with a manifest ``.funnelsim.json`` of the files.

    Raises :class:`~funnelsim.io.OutputRefused`, before writing anything, when
    ``out_dir`` holds files funnelsim did not write (unless ``force``: then they are
    left as they are) or when one of the names it writes belongs to such a file.
    Returns the folder.
    """
    out_dir = Path(out_dir)
    with atomic_folder(out_dir, force=force, by="run") as tmp:
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
            (tmp / RESOLVED).write_text(resolved_text(resolved, tmp), encoding="utf-8")
        drawn = []
        if plots:
            from funnelsim.report.plots import save_standard_plots

            drawn = save_standard_plots(result, tmp / "plots")
        from funnelsim.report.html import write_report

        write_report(result, tmp, drawn)
    return out_dir
