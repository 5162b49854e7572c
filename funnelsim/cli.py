"""``funnelsim`` command line: a thin layer that parses, calls the library and prints.

Known problems (bad scenario files, missing files) exit with code 2 and a located
message; nothing is written.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from funnelsim import __version__
from funnelsim.errors import FunnelsimError, Problem, ScenarioError, format_path
from funnelsim.funnel import list_presets, load_preset

app = typer.Typer(
    name="funnelsim",
    help="Simulate and forecast customer journeys (marketing funnels).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console()
err = Console(stderr=True)


class EngineName(StrEnum):
    counts = "counts"
    expected = "expected"
    agents = "agents"


def _version(value: bool) -> None:
    if value:
        out.print(f"funnelsim {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    """Simulate and forecast customer journeys (marketing funnels)."""


def _report_problems(exc: ScenarioError) -> None:
    n = len(exc.problems)
    err.print(f"[bold red]✗ {escape(exc.source or 'input')}: {n} problem{'s' if n != 1 else ''}[/]")
    for p in exc.problems:
        where = escape(p.location())
        path = escape(format_path(p.path))
        hint = f" [dim]— {escape(p.hint)}[/]" if p.hint else ""
        err.print(f"  [cyan]{where}[/] [bold]{path}[/]: {escape(p.message)}{hint}")


def _report_warnings(warnings: list[Problem]) -> None:
    """``⚠ file:line path: message — hint`` in yellow on stderr, one line each."""
    for p in warnings:
        where = escape(p.location())
        hint = f" — {escape(p.hint)}" if p.hint else ""
        err.print(f"[yellow]⚠ {where} {escape(format_path(p.path))}: {escape(p.message)}{hint}[/]")


def _fail(exc: FunnelsimError) -> None:
    if isinstance(exc, ScenarioError):
        _report_problems(exc)
    else:
        err.print(f"[bold red]✗ {escape(str(exc))}[/]")
    raise typer.Exit(code=2)


@contextmanager
def _writing(target: Path, what: str) -> Iterator[None]:
    """Errors of a command that writes ``target``: a funnelsim error is its message, a
    failed write says so, Ctrl-C says whether ``what`` was written; all exit 2 (Ctrl-C:
    130)."""
    from funnelsim.io import InterruptedAfterWriting

    try:
        yield
    except FunnelsimError as exc:
        _fail(exc)
    except OSError as exc:
        err.print(f"[bold red]✗ could not write {escape(str(target))}: {escape(str(exc))}[/]")
        raise typer.Exit(code=2) from None
    except KeyboardInterrupt as exc:
        done = isinstance(exc, InterruptedAfterWriting)
        _interrupted(f"{what} was written to {target}" if done else "")


@app.command()
def run(
    scenario: Annotated[Path, typer.Argument(help="Scenario YAML file.")],
    output: Annotated[
        Path | None,
        typer.Option(
            "-o", "--output", help="Output folder (default: outputs.dir, else out/<scenario stem>)."
        ),
    ] = None,
    replicates: Annotated[
        int | None,
        typer.Option("--replicates", "-n", min=1, help="Override the number of replicates."),
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", min=0, help="Override the seed.")] = None,
    engine: Annotated[
        EngineName | None, typer.Option("--engine", help="Override the engine.")
    ] = None,
    plots: Annotated[bool, typer.Option("--plots/--no-plots", help="Write plots.")] = True,
    workers: Annotated[
        int,
        typer.Option(
            "--workers", "-w", min=1, help="Workers for replicates (same results for any number)."
        ),
    ] = 1,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or table.")] = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Write into a folder that holds other files, leaving them as they are "
            "(only files funnelsim wrote there before are replaced).",
        ),
    ] = False,
) -> None:
    """Forecast every plan of a scenario; write tables, results.nc, plots and report.html."""
    from funnelsim.io import InterruptedAfterWriting
    from funnelsim.scenario import load_scenario, resolved_scenario, write_outputs
    from funnelsim.scenario.loader import scenario_warnings
    from funnelsim.scenario.outputs import check_outputs

    try:
        spec = load_scenario(scenario)
    except FunnelsimError as exc:
        _fail(exc)
    _report_warnings(scenario_warnings(spec, replicates, engine.value if engine else None))
    if output is None:
        output = (
            (scenario.parent / spec.outputs.dir)
            if spec.outputs.dir
            else Path("out") / scenario.stem
        )
    written = False
    try:
        check_outputs(output, force=force)  # refuse before a long simulation
        result = _simulate(
            spec, replicates, seed, engine.value if engine else spec.engine, quiet, workers=workers
        )
        resolved = resolved_scenario(spec, result)
        write_outputs(result, output, resolved, plots=plots and spec.outputs.plots, force=force)
        written = True
        if not quiet:
            _headline(result)
    except FunnelsimError as exc:
        _fail(exc)
    except OSError as exc:
        err.print(
            f"[bold red]✗ could not write outputs to {escape(str(output))}: {escape(str(exc))}[/]"
        )
        raise typer.Exit(code=2) from None
    except KeyboardInterrupt as exc:
        done = written or isinstance(exc, InterruptedAfterWriting)
        _interrupted(f"the outputs were written to {output}/" if done else "")
    out.print(f"[green]✓[/] wrote {escape(str(output))}/ (seed {result.dataset.attrs['seed']})")


def _interrupted(what: str = "") -> None:
    """One line on Ctrl-C, and exit code 130 (no traceback)."""
    err.print(f"[bold red]✗ interrupted: {escape(what or 'nothing was written')}[/]")
    raise typer.Exit(code=130)


def _simulate(
    spec, replicates: int | None, seed: int | None, engine_name: str, quiet: bool, **options: Any
):  # noqa: ANN001, ANN202 - Scenario and result, imported lazily
    """Run every plan of a scenario with a progress display: replicates per plan and the
    time left."""
    from funnelsim.engines import ENGINES
    from funnelsim.report.console import PlanProgress
    from funnelsim.scenario import run as run_scenario

    n = replicates or spec.replicates
    engine = ENGINES[engine_name]
    days = spec.horizon.periods * spec.horizon.step_days if engine.progress_unit == "day" else None
    with PlanProgress(
        err,
        f"{spec.name} ({engine_name})",
        ["baseline", *spec.variants],
        n if engine.stochastic else 1,
        days_per_replicate=days,
        disable=quiet,
    ) as bar:
        try:
            result = run_scenario(
                spec,
                replicates=n,
                seed=seed,
                engine=engine_name,
                progress=bar.advance,
                plan_started=bar.plan,
                **options,
            )
        except FunnelsimError as exc:
            bar.stop()
            _fail(exc)
        bar.done()
        return result


@app.command()
def simulate(
    scenario: Annotated[Path, typer.Argument(help="Scenario YAML file.")],
    journeys: Annotated[
        Path, typer.Option("--journeys", "-j", help="Event log to write: .csv or .parquet.")
    ],
    replicates: Annotated[
        int,
        typer.Option("--replicates", "-n", min=1, help="Replicates (a `replicate` column if > 1)."),
    ] = 1,
    seed: Annotated[int | None, typer.Option("--seed", min=0, help="Override the seed.")] = None,
    variant: Annotated[
        str | None, typer.Option("--variant", help="Plan to simulate (default: baseline).")
    ] = None,
    record_lost: Annotated[
        bool,
        typer.Option(
            "--record-lost",
            help="Also write entries into `lost` (real logs are silent about drop-off).",
        ),
    ] = False,
    workers: Annotated[
        int, typer.Option("--workers", "-w", min=1, help="Processes for replicates.")
    ] = 1,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Simulate synthetic customers (agent engine) and write their journeys as an event
    log, one row per stage entry: customer_id, timestamp, stage, segment, channel."""
    from funnelsim.scenario import load_scenario
    from funnelsim.scenario.outputs import write_table

    if journeys.suffix not in (".csv", ".parquet"):
        err.print(
            f"[bold red]✗ {escape(str(journeys))}: the event log must end in .csv or .parquet[/]"
        )
        raise typer.Exit(code=2)
    try:
        spec = load_scenario(scenario)
    except FunnelsimError as exc:
        _fail(exc)
    names = ["baseline", *spec.variants]
    if variant is not None and variant not in names:
        from funnelsim.errors import did_you_mean

        err.print(
            f"[bold red]✗ unknown plan {variant!r}[/] [dim]— {did_you_mean(variant, names)}[/]"
        )
        raise typer.Exit(code=2)
    if variant not in (None, "baseline"):
        from funnelsim.scenario.runner import plans

        spec = plans(spec)[variant].model_copy(update={"variants": {}})
    else:
        spec = spec.model_copy(update={"variants": {}})
    from funnelsim.io import check_output_file

    with _writing(journeys, "the journey log"):
        check_output_file(journeys)  # refuse before simulating
        result = _simulate(
            spec,
            replicates,
            seed,
            "agents",
            quiet,
            workers=workers,
            record_journeys=True,
            record_lost=record_lost,
        )
        log = result.journeys["baseline"]
        write_table(log, journeys, by="simulate")
    keys = ["replicate", "customer_id"] if "replicate" in log else ["customer_id"]
    customers = log.groupby(keys).ngroups
    out.print(
        f"[green]✓[/] wrote {len(log):,} stage entries of {customers:,} customers to "
        f"{escape(str(journeys))} (seed {result.dataset.attrs['seed']})"
    )


class FitKind(StrEnum):
    journeys = "journeys"
    snapshots = "snapshots"
    counts = "counts"


class SamplerName(StrEnum):
    nutpie = "nutpie"
    pymc = "pymc"


class FitMethod(StrEnum):
    auto = "auto"
    conjugate = "conjugate"
    gibbs = "gibbs"
    nuts = "nuts"


ColumnsOption = Annotated[
    str | None,
    typer.Option(
        "--columns", help="Your column names, e.g. customer_id=user,timestamp=ts,stage=event."
    ),
]

StageMapOption = Annotated[
    Path | None, typer.Option("--stage-map", help="YAML: raw event name → stage.")
]

DrawsOption = Annotated[int, typer.Option("--draws", min=100, help="Draws per chain.")]

TuneOption = Annotated[int, typer.Option("--tune", min=0, help="Tuning steps per chain.")]

ChainsOption = Annotated[int, typer.Option("--chains", min=1, help="Chains.")]

SamplerOption = Annotated[SamplerName, typer.Option("--sampler", help="NUTS sampler.")]


HeterogeneityOption = Annotated[
    str,
    typer.Option(
        "--heterogeneity",
        help="Journeys: in the repeat stage, gamma lets each customer's repeat and drop-out "
        "rates differ, classes:K learns K kinds of customer; each is compared with none "
        "(one rate for all) by LOO.",
    ),
]


class DropOff(StrEnum):
    auto = "auto"
    silent = "silent"
    observed = "observed"


@app.command()
def fit(
    data: Annotated[
        Path,
        typer.Argument(help="Event log, CRM snapshots or funnel counts: .csv or .parquet."),
    ],
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", help="Fit file to write (default: <data stem>.fit.nc)."),
    ] = None,
    kind: Annotated[
        FitKind,
        typer.Option(
            "--kind",
            help="journeys: one row per stage entry; snapshots: the stage of each customer "
            "at dates; counts: people entering (or in) each stage per week or day.",
        ),
    ] = FitKind.journeys,
    columns: ColumnsOption = None,
    stage_map: StageMapOption = None,
    funnel: Annotated[
        str | None,
        typer.Option(
            "--funnel", help="Funnel YAML or preset: which edges exist (its rates: weak priors)."
        ),
    ] = None,
    campaigns: Annotated[
        Path | None,
        typer.Option("--campaigns", help="YAML in the scenario `campaigns:` syntax to fit."),
    ] = None,
    spend: Annotated[
        Path | None, typer.Option("--spend", help="Spend CSV: a date column, one per campaign.")
    ] = None,
    priors: Annotated[
        Path | None,
        typer.Option("--priors", help="Counts: priors YAML (what each campaign moves, …)."),
    ] = None,
    holdout: Annotated[
        int,
        typer.Option(
            "--holdout", min=0, help="Counts: leave out the last N periods and check the forecast."
        ),
    ] = 0,
    drop_off: Annotated[
        DropOff,
        typer.Option(
            "--drop-off",
            help="silent: logs never record drop-off (auto: silent "
            "unless the log has moves into `lost`).",
        ),
    ] = DropOff.auto,
    method: Annotated[
        FitMethod, typer.Option("--method", help="auto picks the exact method when it applies.")
    ] = FitMethod.auto,
    heterogeneity: HeterogeneityOption = "none",
    repeat_stage: Annotated[
        str | None,
        typer.Option(
            "--repeat-stage", help="With --heterogeneity: the stage (default: most repeats)."
        ),
    ] = None,
    sampler: SamplerOption = SamplerName.nutpie,
    prior_strength: Annotated[
        float,
        typer.Option(
            "--prior-strength",
            min=0.01,
            help="Journeys: observed moves each rate's prior is worth (1: weak; more holds "
            "--funnel's rates more firmly).",
        ),
    ] = 1.0,
    draws: DrawsOption = 1000,
    tune: TuneOption = 1000,
    chains: ChainsOption = 4,
    seed: Annotated[int | None, typer.Option("--seed", min=0, help="Random seed.")] = None,
    end: Annotated[
        str | None, typer.Option("--end", help="End of the data (default: the last event).")
    ] = None,
    scenario_out: Annotated[
        Path | None,
        typer.Option("--scenario-out", help="Also write a starter scenario that uses the fit."),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress or table.")] = False,
) -> None:
    """Learn a journey's rates (and campaign effects) from history; write FIT.nc,
    FIT.rates.csv, FIT.effects.csv and FIT.report.html (counts: also
    FIT.contributions.csv, and FIT.holdout.csv with --holdout)."""
    from funnelsim.io import check_output_file

    if data.suffix.lower() not in (".csv", ".parquet"):
        err.print(f"[bold red]✗ {escape(str(data))}: the data must be a .csv or .parquet file[/]")
        raise typer.Exit(code=2)
    output = output if output is not None else Path(data.stem + ".fit.nc")
    if output.suffix != ".nc":
        err.print(f"[bold red]✗ {escape(str(output))}: the fit file must end in .nc[/]")
        raise typer.Exit(code=2)
    reading = _ReadProgress(disable=quiet)
    with _writing(output, "the fit"):
        try:
            from funnelsim.inference.api import fit_history, fit_paths, write_fit

            for target in [*fit_paths(output), *([scenario_out] if scenario_out else [])]:
                check_output_file(target)  # refuse before reading and sampling

            result = fit_history(
                data,
                kind.value,
                columns=columns,
                stage_map=stage_map,
                funnel=funnel,
                campaigns=campaigns,
                spend=spend,
                drop_off=drop_off.value,
                method=method.value,
                prior_strength=prior_strength,
                sampler=sampler.value,
                draws=draws,
                tune=tune,
                chains=chains,
                seed=seed,
                end=end,
                priors=priors,
                holdout=holdout,
                heterogeneity=heterogeneity,
                repeat_stage=repeat_stage,
                progress=not quiet,
                on_read=reading.update,
                on_phase=reading.phase,
            )
            reading.stop()
            written = write_fit(result, output, scenario_out=scenario_out)
        finally:
            reading.stop()
    if not quiet:
        from funnelsim.report.fit_console import print_fit

        print_fit(result, out)
    names = ", ".join(escape(str(p.name)) for p in written)
    out.print(f"[green]✓[/] wrote {names}")


class _ReadProgress:
    """A bar of bytes read while a data file is reduced; phase lines on stderr after it."""

    def __init__(self, disable: bool) -> None:
        self.disable = disable
        self.bar: Any = None
        self.task: Any = None

    def update(self, rows: int, done: int, total: int) -> None:
        if self.disable:
            return
        if self.bar is None:
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
            )

            self.bar = Progress(
                TextColumn("reading"),
                BarColumn(),
                DownloadColumn(),
                TextColumn("{task.fields[rows]:,} rows"),
                TimeRemainingColumn(),
                console=err,
                transient=True,
            )
            self.bar.start()
            self.task = self.bar.add_task("read", total=total or None, rows=0)
        self.bar.update(self.task, completed=done, rows=rows)

    def phase(self, text: str) -> None:
        if self.disable:
            return
        if not text.startswith("reading"):
            self.stop()
        err.print(f"[dim]{escape(text)}[/]")

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


@app.command()
def nowcast(
    fit_file: Annotated[Path, typer.Argument(help="A journey fit (FIT.nc from `funnelsim fit`).")],
    output: Annotated[
        Path | None,
        typer.Option(
            "-o", "--output", help="Customers CSV to write (default: <fit>.customers.csv)."
        ),
    ] = None,
    horizon: Annotated[
        float,
        typer.Option("--horizon", min=1.0, help="Days ahead for each customer's expected repeats."),
    ] = 90.0,
    draws: Annotated[int, typer.Option("--draws", min=10, help="Posterior draws used.")] = 200,
    seed: Annotated[int | None, typer.Option("--seed", min=0, help="Random seed.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No table.")] = False,
) -> None:
    """Where every known customer stands at the end of the data: P(still active) per
    customer (the CRM list for win-back or advocacy campaigns) and occupancy per stage.
    For a counts fit: the people in each stage at the end of the fitted data."""
    from funnelsim.inference.fitted import FittedFunnel
    from funnelsim.inference.nowcast import nowcast as run_nowcast
    from funnelsim.io import check_output_file, write_file

    if output is not None and output.suffix.lower() != ".csv":
        err.print(f"[bold red]✗ {escape(str(output))}: the output must be a .csv file[/]")
        raise typer.Exit(code=2)
    try:
        fitted = FittedFunnel.load(fit_file)
    except FunnelsimError as exc:
        _fail(exc)
    counts = fitted.kind == "counts"  # no customers: the occupancy per stage
    if output is None:
        output = fit_file.with_suffix(".occupancy.csv" if counts else ".customers.csv")
    with _writing(output, "the nowcast"):
        check_output_file(output)
        result = run_nowcast(fitted, horizon=horizon, draws=draws, seed=seed)
        table = result.occupancy.drop(columns="last_seen") if counts else result.customers
        write_file(
            output, lambda tmp: table.to_csv(tmp, index=False, float_format="%.6g"), by="nowcast"
        )
    if not quiet:
        from funnelsim.report.fit_console import print_nowcast

        print_nowcast(result, out)
    what = "occupancy per stage" if counts else f"{len(result.customers):,} customers"
    out.print(f"[green]✓[/] wrote {escape(Path(str(output)).name)} ({what})")


@app.command()
def backtest(
    data: Annotated[Path, typer.Argument(help="Event log: .csv or .parquet.")],
    cutoff: Annotated[
        list[str],
        typer.Option(
            "--cutoff",
            help="Fit the data up to this date, forecast the rest. Give it again for a "
            "rolling backtest at several cutoffs.",
        ),
    ],
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", help="Output folder (default: out/backtest-<data stem>)."),
    ] = None,
    kind: Annotated[FitKind, typer.Option("--kind", help="What the data are.")] = FitKind.journeys,
    columns: ColumnsOption = None,
    stage_map: StageMapOption = None,
    funnel: Annotated[
        str | None, typer.Option("--funnel", help="Funnel YAML or preset: which edges exist.")
    ] = None,
    spend: Annotated[
        Path | None, typer.Option("--spend", help="Counts: spend CSV, one column per campaign.")
    ] = None,
    priors: Annotated[
        Path | None,
        typer.Option("--priors", help="Counts: priors YAML (what each campaign moves)."),
    ] = None,
    heterogeneity: HeterogeneityOption = "none",
    repeat_stage: Annotated[
        str | None, typer.Option("--repeat-stage", help="With --heterogeneity: the stage.")
    ] = None,
    every: Annotated[
        float | None,
        typer.Option(
            "--every",
            min=1.0,
            help="Rolling: cutoffs from --cutoff every DAYS days while a whole --horizon "
            "is left after them.",
        ),
    ] = None,
    horizon: Annotated[
        float | None,
        typer.Option(
            "--horizon",
            min=1.0,
            help="Days compared after each cutoff (default: to the end of the data).",
        ),
    ] = None,
    period_days: Annotated[
        float, typer.Option("--period-days", min=1.0, help="Days per compared period.")
    ] = 7.0,
    draws: DrawsOption = 1000,
    tune: TuneOption = 1000,
    chains: ChainsOption = 4,
    sampler: SamplerOption = SamplerName.nutpie,
    seed: Annotated[int | None, typer.Option("--seed", min=0, help="Random seed.")] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Write into a folder that holds other files.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress or table.")] = False,
) -> None:
    """Fit the history up to --cutoff, forecast to the end of the data (or --horizon
    days) and compare with what happened: DIR/backtest.csv (totals per stage and
    cohort: known customers, new ones, all), DIR/backtest_periods.csv, DIR/backtest.png
    and the fit, DIR/fit.nc. Several --cutoff (or --every DAYS) repeat it at each
    cutoff: one row per cutoff in the tables, the error over time in the chart, a fit
    per cutoff (DIR/fit-DATE.nc)."""
    from funnelsim.io import atomic_folder, check_output_folder

    if data.suffix.lower() not in (".csv", ".parquet"):
        err.print(f"[bold red]✗ {escape(str(data))}: the data must be a .csv or .parquet file[/]")
        raise typer.Exit(code=2)
    output = output if output is not None else Path("out") / f"backtest-{data.stem}"
    names: tuple[str, ...] = ("backtest.csv", "backtest_periods.csv", "backtest.png", "fit.nc")
    reading = _ReadProgress(disable=quiet)
    with _writing(output, "the backtest"):
        try:
            from funnelsim.inference import backtest as bt_mod

            check_output_folder(output, force=force, by="backtest", names=names)
            options: dict[str, Any] = dict(
                columns=columns, stage_map=stage_map, funnel=funnel,
                sampler=sampler.value, draws=draws, tune=tune, chains=chains, seed=seed,
                progress=not quiet,
            )  # fmt: skip
            if kind == FitKind.counts:
                options |= {"spend": spend, "priors": priors}
            elif kind == FitKind.journeys:
                options |= dict(
                    heterogeneity=heterogeneity, repeat_stage=repeat_stage, on_read=reading.update
                )
            bts = bt_mod.rolling_backtests(
                kind.value, data, cutoff, every=every, horizon=horizon, period_days=period_days,
                seed=seed, fit_options=options, on_phase=reading.phase,
            )  # fmt: skip
            reading.stop()
            rolling = len(bts) > 1
            if rolling:
                names = ("backtest.csv", "backtest_periods.csv", "backtest.png",
                         *(f"fit-{b.cutoff:%Y-%m-%d}.nc" for b in bts))  # fmt: skip
                check_output_folder(output, force=force, by="backtest", names=names)
            with atomic_folder(output, force=force, by="backtest") as tmp:
                if rolling:
                    totals, periods = bt_mod.rolling_tables(bts)
                    figure = bt_mod.rolling_figure(bts, kind.value)
                else:
                    totals, periods = bts[0].totals, bts[0].periods
                    figure = (
                        bt_mod.snapshot_figure(bts[0])
                        if kind == FitKind.snapshots
                        else bt_mod.backtest_figure(bts[0], _period_of(bts[0], period_days))
                    )
                totals.to_csv(tmp / "backtest.csv", index=False, float_format="%.6g")
                periods.to_csv(tmp / "backtest_periods.csv", index=False, float_format="%.6g")
                figure.savefig(tmp / "backtest.png", dpi=110)
                for b in bts:
                    b.fit.stamp()
                    name = f"fit-{b.cutoff:%Y-%m-%d}.nc" if rolling else "fit.nc"
                    b.fit.idata.to_netcdf(str(tmp / name))
        finally:
            reading.stop()
    if not quiet:
        from funnelsim.report.fit_console import print_backtest, print_rolling_backtest

        if len(bts) > 1:
            print_rolling_backtest(bts, out, kind.value)
        else:
            print_backtest(bts[0], out, _period_of(bts[0], period_days), kind.value)
    out.print(f"[green]✓[/] wrote {escape(str(output))}/ ({', '.join(names)})")


def _period_of(bt, period_days: float) -> float:  # noqa: ANN001 - a Backtest
    """Days per compared period: the data's own periods for counts."""
    if bt.fit.kind == "counts":
        return float(bt.fit.data.get("period_days") or period_days)
    return period_days


def _headline(result) -> None:  # noqa: ANN001 - SimulationResult, imported lazily
    from funnelsim.report.console import print_headline

    print_headline(result, out)


@app.command()
def validate(scenario: Annotated[Path, typer.Argument(help="Scenario YAML file.")]) -> None:
    """Check a scenario file; list every problem with its location (exit code 2)."""
    from funnelsim.scenario import build_funnel, load_scenario
    from funnelsim.scenario.loader import scenario_warnings

    try:
        spec = load_scenario(scenario)
    except FunnelsimError as exc:
        _fail(exc)
    _report_warnings(scenario_warnings(spec))
    funnel = build_funnel(spec.funnel)
    h = spec.horizon
    out.print(
        f"[green]✓[/] {escape(str(scenario))} is valid: {len(funnel.stages) - 1} stages + lost, "
        f"goal {funnel.goal!r}, {h.periods} {h.step}s from {h.start}, "
        f"{spec.replicates} replicates, engine {spec.engine}"
    )


@app.command()
def presets(
    name: Annotated[str | None, typer.Argument(help="Show this preset's YAML.")] = None,
) -> None:
    """List the shipped journey presets (use one with `funnel: NAME` in a scenario)."""
    available = list_presets()
    if name is not None:
        if name not in available:
            from funnelsim.errors import did_you_mean

            err.print(
                f"[bold red]✗ unknown preset {name!r}[/] [dim]— {did_you_mean(name, available)}[/]"
            )
            raise typer.Exit(code=2)
        sys.stdout.write(yaml.safe_dump(load_preset(name), sort_keys=False, allow_unicode=True))
        return
    table = Table(title="Journey presets (illustrative numbers)", title_justify="left")
    table.add_column("name", style="bold")
    table.add_column("stages")
    table.add_column("goal")
    for key in available:
        spec = load_preset(key)
        table.add_row(key, " → ".join(s for s in spec["stages"] if s != "lost"), spec["goal"])
    out.print(table)


@app.command()
def schema(
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write to a file.")] = None,
) -> None:
    """Print the JSON Schema of scenario files (for editor completion and checks)."""
    from funnelsim.scenario import json_schema

    text = json.dumps(json_schema(), indent=2)
    if output is None:
        sys.stdout.write(text + "\n")
        return
    from funnelsim.io import write_file

    try:
        write_file(output, lambda tmp: tmp.write_text(text + "\n", encoding="utf-8"), by="schema")
    except FunnelsimError as exc:
        _fail(exc)
    except OSError as exc:
        err.print(f"[bold red]✗ could not write {escape(str(output))}: {escape(str(exc))}[/]")
        raise typer.Exit(code=2) from None


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
