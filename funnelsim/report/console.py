"""The headline tables ``funnelsim run`` prints, sized to the terminal.

No cell is ever cut: the plans are shown side by side (one row per plan, its 5–95%
range on the line below) when that fits the console's width (80 columns when piped),
else as one block per plan with a row per number. A deterministic run (the expected
engine) or a single replicate shows point values, with no ranges or probabilities.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from io import StringIO
from typing import TYPE_CHECKING

import pandas as pd
from rich import box
from rich.cells import cell_len
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from funnelsim.report.format import ECONOMIC_METRICS, compact, is_percent, metric_name, whole

if TYPE_CHECKING:
    from funnelsim.results import SimulationResult

__all__ = [
    "PlanProgress",
    "Run",
    "best_plan",
    "print_comparison",
    "print_headline",
    "print_totals",
    "run_info",
]


@dataclass(frozen=True)
class Run:
    """What a reader must know to read the numbers: the title, how many replicates, whether
    the engine is deterministic, and the currency of money (``""``: none given)."""

    title: str
    replicates: int
    deterministic: bool = False
    currency: str = ""

    @property
    def point(self) -> bool:
        """Point values only: a deterministic run or a single replicate has no spread."""
        return self.deterministic or self.replicates == 1

    def caveat(self) -> str:
        """Why there are no ranges, for point values."""
        if self.deterministic:
            return "deterministic expected values; run with the counts engine for uncertainty"
        return "a single replicate; run more replicates for uncertainty"


def run_info(result: SimulationResult) -> Run:
    """The :class:`Run` facts of a simulation result."""
    from funnelsim.engines import ENGINES

    attrs = result.dataset.attrs
    engine = ENGINES.get(str(attrs.get("engine")))
    return Run(
        title=str(attrs.get("title", "")),
        replicates=int(result.dataset.sizes["replicate"]),
        deterministic=engine is not None and not engine.stochastic,
        currency=str(attrs.get("currency", "") or ""),
    )


def print_headline(result: SimulationResult, console: Console) -> None:
    """The plans compared (or, without variants, the totals), then any queues."""
    run = run_info(result)
    if result.variants:
        print_comparison(console, result.comparison(), run)
    else:
        print_totals(console, result.summary(), run)
    queues = result.summary_queues()
    if queues is not None:
        table = queues.set_index(["scenario", "queue", "metric"])["mean"]
        for (scenario, queue), rows in table.groupby(level=[0, 1]):
            m = rows.droplevel([0, 1])
            console.print(
                f"[bold]{escape(str(queue))}[/] queue ({escape(str(scenario))}): waited "
                f"{m['wait_mean']:.2f} days on average (90% within {m['wait_p90']:.2f}), "
                f"servers busy {m['utilisation']:.0%}, {m['lost_waiting']:,.0f} lost to "
                f"waiting, {m['served']:,.0f} served [dim](means over replicates)[/]"
            )


# ------------------------------------------------------------------------ totals
def _value(metric: str, value: float) -> str:
    return f"{value:,.1%}" if is_percent(metric) else whole(value)


def print_totals(console: Console, summary: pd.DataFrame, run: Run) -> None:
    """One plan's totals over the horizon: a row per metric, mean and 5–95% range (or
    the value alone for point values); money rows only when there is money."""
    table = Table(title=f"{run.title}: totals over the horizon", title_justify="left")
    table.add_column("metric", overflow="fold")
    table.add_column("value" if run.point else "mean", justify="right", no_wrap=True)
    if not run.point:
        table.add_column("5–95% range", justify="right", no_wrap=True)
    churned = "churned" in set(summary["metric"])
    for row in summary.itertuples():
        metric = str(row.metric)
        if metric in ECONOMIC_METRICS and not (row.mean == row.mean and row.mean != 0):
            continue  # no economics or no spend in this scenario: nothing to show
        name = metric_name(metric, churned, short=True)
        top = float(row.mean if run.point else row.p95)
        per_person = metric == "conversion_rate" and top > 1.0  # repeats: more than one each
        if per_person:
            name = "conversions per person"

        def show(v: float, metric: str = metric, per_person: bool = per_person) -> str:
            return f"{v:,.2f}" if per_person else _value(metric, v)

        cells = [escape(name), show(float(row.mean))]
        if not run.point:
            cells.append(f"{show(float(row.p05))} – {show(float(row.p95))}")
        table.add_row(*cells)
    console.print(table)
    if run.point:
        console.print(f"[dim]{run.caveat().capitalize()}.[/]")
    if run.currency and "profit" in set(summary["metric"]):
        console.print(f"[dim]Money in {escape(run.currency)}.[/]")


# -------------------------------------------------------------------- comparison
def _has_money(rows: pd.DataFrame) -> bool:
    money = rows[["revenue", "spend"]].abs().fillna(0.0)
    return bool((money > 0).to_numpy().any())


def best_plan(rows: pd.DataFrame, money: bool, point: bool) -> int:
    """Row of the plan to recommend: the most often most profitable across replicates
    (ties: the higher mean profit); for point values the most profitable; without
    economics the one with the most conversions."""
    if not money:
        return int(rows["conversions"].idxmax())
    if point or "prob_best_profit" not in rows:
        return int(rows["profit"].idxmax())
    ranked = rows.sort_values(["prob_best_profit", "profit"], ascending=False, kind="stable")
    return int(ranked.index[0])


def how_sure(rows: pd.DataFrame, best: int) -> tuple[str, float, pd.Series | None]:
    """How sure we are that plan ``best`` is the most profitable: a word ("almost
    certainly" ≥ 95%, "probably" ≥ 75%, else "possibly"), its share of replicates, and
    the runner-up when it is too close to call (below 75%), else None."""
    sure = float(rows.loc[best, "prob_best_profit"])
    word = "almost certainly" if sure >= 0.95 else "probably" if sure >= 0.75 else "possibly"
    second = None
    if sure < 0.75:
        others = rows.drop(index=best).sort_values("prob_best_profit", ascending=False)
        second = others.iloc[0]
    return word, sure, second


Format = Callable[[float, bool], str]


def _range(fmt: Format, lo: float, hi: float, signed: bool, sep: str = " – ") -> str:
    return f"{fmt(lo, signed)}{sep}{fmt(hi, signed)}"


def _columns(money: bool) -> list[tuple[str, str, bool]]:
    """``(header, comparison column, signed)`` of each number shown per plan."""
    cols = [("sales", "conversions", False)]
    if money:
        cols.append(("profit", "profit", False))
    cols.append(("Δ sales", "uplift_conversions", True))
    if money:
        cols.append(("Δ profit", "uplift_profit", True))
    return cols


def _probabilities(money: bool, point: bool) -> list[tuple[str, str]]:
    if point:
        return []
    probs = [("P(Δ>0)", "prob_beats_baseline")]
    return probs + ([("P(best)", "prob_best_profit")] if money else [])


def _wide(rows: pd.DataFrame, money: bool, point: bool, best: int, fmt: Format) -> Table:
    """One row per plan; for replicates, each number's 5–95% range on the line below."""
    table = Table(box=box.SIMPLE_HEAD, padding=(0, 0, 0, 1), pad_edge=False, show_edge=False)
    cols, probs = _columns(money), _probabilities(money, point)
    table.add_column("plan", no_wrap=True)
    for header, *_ in cols + probs:
        table.add_column(header, justify="right", no_wrap=True)
    for k, row in rows.iterrows():
        cells = [escape(str(row.scenario))]
        for _, col, signed in cols:
            if signed and k == 0:
                cells.append("[dim]baseline[/]" if col == "uplift_conversions" else "")
                continue
            text = fmt(row[col], signed)
            if not point:
                span = _range(fmt, row[f"{col}_p05"], row[f"{col}_p95"], signed, sep="–")
                text += f"\n[dim]{span}[/]"
            cells.append(text)
        for _, col in probs:
            value = row.get(col)
            cells.append("" if value is None or value != value else f"{value:.0%}")
        table.add_row(*cells, style="bold green" if k == best else None)
    return table


def _blocks(
    rows: pd.DataFrame, money: bool, point: bool, best: int, fmt: Format
) -> tuple[list[Text], int]:
    """One block per plan: its name and label on a line of their own (wrapped like
    prose if long), then a row per number, columns aligned across blocks. Narrow
    enough for any plan name and any number."""
    names = {
        "conversions": "sales",
        "uplift_conversions": "Δ sales",
        "profit": "profit",
        "uplift_profit": "Δ profit",
    }
    probs = {"uplift_conversions": ("P(Δ>0)", "prob_beats_baseline")}
    if money:
        probs["profit"] = ("P(best)", "prob_best_profit")
    header = ["", "value" if point else "mean"] + ([] if point else ["5–95% range", ""])
    blocks: list[tuple[int, str, list[list[str]]]] = []
    for k, row in rows.iterrows():
        head = str(row.scenario) + ("" if row.label == row.scenario else f": {row.label}")
        lines = []
        for col in names:
            if (not money and "profit" in col) or (k == 0 and col.startswith("uplift")):
                continue
            signed = col.startswith("uplift")
            cells = [names[col], fmt(row[col], signed)]
            if not point:
                cells.append(_range(fmt, row[f"{col}_p05"], row[f"{col}_p95"], signed))
                label, key = probs.get(col, ("", ""))
                value = row.get(key) if key else None
                cells.append("" if value is None or value != value else f"{label} {value:.0%}")
            lines.append(cells)
        blocks.append((int(k), head, lines))
    every = [header] + [cells for _, _, lines in blocks for cells in lines]
    widths = [max(cell_len(cells[j]) for cells in every) for j in range(len(header))]

    def line(cells: list[str]) -> str:
        parts = [cells[0].ljust(widths[0])]
        parts += [c.rjust(w) for c, w in zip(cells[1:3], widths[1:3], strict=False)]
        parts += cells[3:]
        return ("  " + "  ".join(parts)).rstrip()

    out = [Text(line(header), style="bold")]
    for k, head, lines in blocks:
        style = "bold green" if k == best else ""
        out.append(Text(head, style=style or "bold"))
        out += [Text(line(cells), style=style) for cells in lines]
    return out, max(cell_len(line(cells)) for cells in every)


def _width(table: Table) -> int:
    probe = Console(width=10_000, file=StringIO(), color_system=None)
    return probe.measure(table).maximum


def print_comparison(console: Console, rows: pd.DataFrame, run: Run) -> None:
    """Plans side by side: means with their 5–95% ranges across replicates, the paired
    difference from the baseline, and how sure we are; point values for a
    deterministic run. Never cuts a number: too wide for the console, it prints one
    block per plan instead."""
    money = _has_money(rows)
    best = best_plan(rows, money, run.point)
    console.print(f"[bold]{escape(run.title)}: plans compared over the horizon[/]")
    # the first layout that fits: side by side, then a block per plan; whole numbers
    # (1,245,300) before compact ones (1.25M)
    wide = False
    for fmt in (whole, compact):
        table = _wide(rows, money, run.point, best, fmt)
        if _width(table) <= console.width:
            console.print(table)
            wide = True
            break
    else:
        for fmt in (whole, compact):
            lines, width = _blocks(rows, money, run.point, best, fmt)
            if width <= console.width or fmt is compact:
                for text in lines:
                    console.print(text)
                break
    notes = ["sales = conversions"]
    if not run.point:
        where = "below it" if wide else "beside it"
        notes.append(f"each mean has its 5–95% range across replicates {where}")
    notes.append("Δ = difference from the baseline" + ("" if run.point else " (paired)"))
    if not run.point:
        notes.append("P(Δ>0) = chance of more sales than the baseline")
        if money:
            notes.append("P(best) = chance of the highest profit")
    if money and run.currency:
        notes.append(f"money in {run.currency}")
    console.print(f"[dim]{escape('; '.join(notes))}[/]")
    if wide:
        for row in rows.itertuples():
            if row.label != row.scenario:
                console.print(f"  [bold]{escape(str(row.scenario))}[/]: {escape(str(row.label))}")
    top = rows.loc[best]
    name = f"[bold]{escape(str(top.scenario))}[/]"
    if not money:
        console.print(f"{name} has the most sales on average.")
    elif run.point:
        console.print(f"{name} is the most profitable plan ({run.caveat()}).")
    else:
        word, sure, second = how_sure(rows, best)
        close = ""
        if second is not None:
            close = (
                f" (too close to call: {escape(str(second.scenario))} is the best in "
                f"{second.prob_best_profit:.0%})"
            )
        console.print(
            f"{name} is {word} the most profitable plan: the best in {sure:.0%} of "
            f"{run.replicates} replicates{close}."
        )


# ---------------------------------------------------------------------- progress
class PlanProgress:
    """A progress display for a scenario's plans: a row for all plans with the time
    remaining (when there are several), and a row per plan counting its replicates
    (``days_per_replicate`` turns simulated days, as the agent engine reports them,
    into replicates).

    Use as a context manager; pass :meth:`plan` and :meth:`advance` to the runner.
    """

    def __init__(
        self,
        console: Console,
        title: str,
        plans: list[str],
        replicates: int,
        days_per_replicate: float | None = None,
        disable: bool = False,
    ) -> None:
        self.title, self.plans, self.replicates = title, plans, replicates
        self.per_unit = 1.0 / days_per_replicate if days_per_replicate else 1.0
        # the bar takes what the labels and counters leave of the line, so that no
        # column is cut short in a narrow terminal
        label = max([len(title), *(len(f"  plan {n}/{n} {p}") for n, p in enumerate(plans))])
        counter = max(len(self._done(replicates)), len(self._done_plans(len(plans))))
        spare = console.width - label - counter - len(" 0:00:00 left 0:00:00") - 5
        self.bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(bar_width=max(4, min(24, spare))),
            TextColumn("{task.fields[done]}"),
            TimeElapsedColumn(),
            TextColumn("[dim]left[/]"),
            TimeRemainingColumn(),
            console=console,
            disable=disable,
        )
        self.total: TaskID | None = None
        if len(plans) > 1:
            self.total = self.bar.add_task(
                f"[bold]{escape(title)}[/]", total=len(plans), done=self._done_plans(0)
            )
        self.task: TaskID | None = None
        self.plan_index, self.completed = -1, 0.0

    def _done_plans(self, k: float) -> str:
        return f"{int(k)}/{len(self.plans)} plans"

    def __enter__(self) -> PlanProgress:
        self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()

    def stop(self) -> None:
        """Stop drawing (before printing an error)."""
        self.bar.stop()

    def plan(self, k: int, name: str) -> None:
        """Plan ``k`` (0 = the baseline), called ``name``, starts."""
        if self.task is not None:
            self._finish()
        self.plan_index, self.completed = k, 0.0
        label = f"  plan {k + 1}/{len(self.plans)} {escape(name)}"
        if self.total is None:
            label = f"[bold]{escape(self.title)}[/]"
        self.task = self.bar.add_task(label, total=self.replicates, done=self._done(0))

    def _done(self, completed: float) -> str:
        return f"{int(completed):,}/{self.replicates:,} replicates"

    def _finish(self) -> None:
        assert self.task is not None
        self.bar.update(self.task, completed=self.replicates, done=self._done(self.replicates))
        if self.total is not None:
            plans = self.plan_index + 1
            self.bar.update(self.total, completed=plans, done=self._done_plans(plans))

    def advance(self, work: float) -> None:
        """Work just finished: replicates, or simulated days."""
        if self.task is None:
            return
        completed = min(self.replicates, self.completed + work * self.per_unit)
        self.completed = completed
        self.bar.update(self.task, completed=completed, done=self._done(completed))
        if self.total is not None:
            overall = self.plan_index + completed / self.replicates
            self.bar.update(self.total, completed=overall, done=self._done_plans(overall))

    def done(self) -> None:
        """Every plan finished."""
        if self.task is not None:
            self._finish()
