"""``funnelsim`` command line: a thin layer that parses, calls the library and prints.

Known problems (bad scenario files, missing files) exit with code 2 and a located
message; nothing is written.
"""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from funnelsim import __version__
from funnelsim.errors import FunnelsimError, ScenarioError, format_path
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


def _fail(exc: FunnelsimError) -> None:
    if isinstance(exc, ScenarioError):
        _report_problems(exc)
    else:
        err.print(f"[bold red]✗ {escape(str(exc))}[/]")
    raise typer.Exit(code=2)


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
) -> None:
    """Forecast every plan of a scenario; write tables, results.nc, plots and report.html."""
    from funnelsim.scenario import load_scenario, resolved_scenario, write_outputs

    try:
        spec = load_scenario(scenario)
    except FunnelsimError as exc:
        _fail(exc)
    if output is None:
        output = (
            (scenario.parent / spec.outputs.dir)
            if spec.outputs.dir
            else Path("out") / scenario.stem
        )
    result = _simulate(
        spec, replicates, seed, engine.value if engine else spec.engine, quiet, workers=workers
    )
    try:
        write_outputs(
            result, output, resolved_scenario(spec, result), plots=plots and spec.outputs.plots
        )
    except OSError as exc:
        err.print(
            f"[bold red]✗ could not write outputs to {escape(str(output))}: {escape(str(exc))}[/]"
        )
        raise typer.Exit(code=2) from None
    if not quiet:
        _headline(result)
    out.print(f"[green]✓[/] wrote {escape(str(output))}/ (seed {result.dataset.attrs['seed']})")


def _simulate(
    spec, replicates: int | None, seed: int | None, engine_name: str, quiet: bool, **options: Any
):  # noqa: ANN001, ANN202 - Scenario and result, imported lazily
    """Run every plan of a scenario with a progress bar (replicates, or simulated days)."""
    from funnelsim.engines import ENGINES
    from funnelsim.scenario import run as run_scenario

    n = replicates or spec.replicates
    plans = 1 + len(spec.variants)
    if ENGINES[engine_name].progress_unit == "day":
        days = spec.horizon.periods * spec.horizon.step_days
        total, what = n * days * plans, "simulated days"
    else:
        total, what = (1 if engine_name == "expected" else n) * plans, "replicates"
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(what),
        TimeElapsedColumn(),
        console=err,
        disable=quiet,
    ) as bar:
        task = bar.add_task(f"{spec.name} ({engine_name})", total=total)
        try:
            return run_scenario(
                spec,
                replicates=n,
                seed=seed,
                engine=engine_name,
                progress=lambda k: bar.advance(task, k),
                **options,
            )
        except FunnelsimError as exc:
            bar.stop()
            _fail(exc)


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
    try:
        write_table(log, journeys)
    except OSError as exc:
        err.print(f"[bold red]✗ could not write {escape(str(journeys))}: {escape(str(exc))}[/]")
        raise typer.Exit(code=2) from None
    keys = ["replicate", "customer_id"] if "replicate" in log else ["customer_id"]
    customers = log.groupby(keys).ngroups
    out.print(
        f"[green]✓[/] wrote {len(log):,} stage entries of {customers:,} customers to "
        f"{escape(str(journeys))} (seed {result.dataset.attrs['seed']})"
    )


def _headline(result) -> None:  # noqa: ANN001 - SimulationResult, imported lazily
    if result.variants:
        _comparison(result)
    else:
        _totals(result)
    queues = result.summary_queues()
    if queues is not None:
        table = queues.set_index(["scenario", "queue", "metric"])["mean"]
        for (scenario, queue), rows in table.groupby(level=[0, 1]):
            m = rows.droplevel([0, 1])
            out.print(
                f"[bold]{escape(str(queue))}[/] queue ({escape(str(scenario))}): waited "
                f"{m['wait_mean']:.2f} days on average (90% within {m['wait_p90']:.2f}), "
                f"servers busy {m['utilisation']:.0%}, {m['lost_waiting']:,.0f} lost to "
                f"waiting, {m['served']:,.0f} served [dim](means over replicates)[/]"
            )


def _totals(result) -> None:  # noqa: ANN001
    table = Table(
        title=f"{result.dataset.attrs.get('title', '')}: totals over the horizon",
        title_justify="left",
    )
    table.add_column("metric")
    table.add_column("mean", justify="right")
    table.add_column("5–95% range", justify="right")
    money = {"revenue", "spend", "profit", "cac", "roi"}
    for row in result.summary().itertuples():
        if row.metric in money and not (row.mean == row.mean and row.mean != 0):
            continue  # no economics or no spend in this scenario: nothing to show
        pct = row.metric.endswith("_rate") or row.metric == "roi"
        fmt = (lambda v: f"{v:.1%}") if pct else (lambda v: f"{v:,.0f}")
        table.add_row(row.metric, fmt(row.mean), f"{fmt(row.p05)} – {fmt(row.p95)}")
    out.print(table)


def _num(value: float, signed: bool = False) -> str:
    """Compact number: 1,234 / 27.7k / 1.25M, with a sign if asked."""
    sign = ("+" if value >= 0 else "−") if signed else ("−" if value < 0 else "")
    v = abs(value)
    text = f"{v / 1e6:.3g}M" if v >= 1e6 else f"{v / 1e3:.0f}k" if v >= 1e4 else f"{v:,.0f}"
    return sign + text


def _cell(mean: float, lo: float, hi: float, signed: bool = False) -> str:
    return f"{_num(mean, signed)}\n[dim]{_num(lo, signed)}…{_num(hi, signed)}[/]"


def _comparison(result) -> None:  # noqa: ANN001
    """Plans side by side: means with 90% intervals, uplift vs baseline, how sure we are."""
    rows = result.comparison()
    title = f"{result.dataset.attrs.get('title', '')}: plans compared over the horizon"
    out.print(f"[bold]{escape(title)}[/]")
    table = Table(box=box.SIMPLE_HEAD, padding=(0, 0, 0, 1), pad_edge=False, show_edge=False)
    for name in ("plan", "sales", "profit", "Δ sales", "Δ profit", "P(Δ>0)", "P(best)"):
        table.add_column(name, justify="left" if name == "plan" else "right", no_wrap=True)
    best = int(rows["profit"].idxmax())
    for k, row in rows.iterrows():
        cells = [
            escape(str(row.scenario)),
            _cell(row.conversions, row.conversions_p05, row.conversions_p95),
            _cell(row.profit, row.profit_p05, row.profit_p95),
        ]
        if k == 0:
            cells += ["[dim]baseline[/]", "", ""]
        else:
            cells += [
                _cell(
                    row.uplift_conversions,
                    row.uplift_conversions_p05,
                    row.uplift_conversions_p95,
                    signed=True,
                ),
                _cell(row.uplift_profit, row.uplift_profit_p05, row.uplift_profit_p95, signed=True),
                f"{row.prob_beats_baseline:.0%}",
            ]
        cells.append(f"{row.prob_best_profit:.0%}")
        table.add_row(*cells, style="bold green" if k == best else None)
    out.print(table)
    out.print(
        "[dim]sales = conversions: mean, and its 5–95% range across replicates below; "
        "Δ = paired difference from the baseline (common random numbers); P(Δ>0) = "
        "chance of more sales than the baseline; P(best) = chance of the highest profit[/]"
    )
    for row in rows.itertuples():
        if row.label != row.scenario:
            out.print(f"  [bold]{escape(str(row.scenario))}[/]: {escape(str(row.label))}")
    top = rows.loc[best]
    sure = top.prob_best_profit
    word = "almost certainly" if sure >= 0.95 else "probably" if sure >= 0.75 else "possibly"
    out.print(
        f"[bold]{escape(str(top.scenario))}[/] is {word} the most profitable plan: the "
        f"best in {sure:.0%} of {result.dataset.sizes['replicate']} replicates."
    )


@app.command()
def validate(scenario: Annotated[Path, typer.Argument(help="Scenario YAML file.")]) -> None:
    """Check a scenario file; list every problem with its location (exit code 2)."""
    from funnelsim.scenario import build_funnel, load_scenario

    try:
        spec = load_scenario(scenario)
    except FunnelsimError as exc:
        _fail(exc)
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
    else:
        output.write_text(text + "\n", encoding="utf-8")


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
