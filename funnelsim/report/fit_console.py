"""The console view of a fit: dwell and routing with intervals, campaign lifts,
convergence, and the model's notes — readable in an 80-column terminal."""

from __future__ import annotations

import numpy as np
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from funnelsim.inference.fitted import HDI_PROB, FittedFunnel, target_label

__all__ = ["print_backtest", "print_fit", "print_nowcast"]


def print_fit(fit: FittedFunnel, console: Console) -> None:
    """Print what the fit learned and whether its sampler can be trusted."""
    data = fit.data
    pct = f"{HDI_PROB:.0%}"
    routing = fit.dwell_routing()
    for segment in fit.segments:
        title = "The journey as learned" + (
            f" — segment {segment}" if len(fit.segments) > 1 else ""
        )
        table = Table(title=title, title_justify="left", box=None, pad_edge=False)
        table.add_column("stage", no_wrap=True)
        table.add_column("estimate", justify="right", no_wrap=True)
        table.add_column(f"{pct} interval", justify="right", no_wrap=True)
        rows = routing[routing["segment"] == segment]
        for rec in rows.itertuples():
            if rec.to == "(dwell days)":
                table.add_row(
                    f"[bold]{escape(rec.stage)}[/]: days before next move",
                    f"{rec.mean:.1f}",
                    f"{rec.hdi_low:.1f} – {rec.hdi_high:.1f}",
                )
            else:
                table.add_row(
                    f"  then to {escape(rec.to)}",
                    f"{rec.mean:.0%}",
                    f"{rec.hdi_low:.0%} – {rec.hdi_high:.0%}",
                )
        console.print(table)
    effects = fit.effects()
    if len(effects):
        table = Table(
            title="Campaign lifts (rate × at full pressure)", title_justify="left", box=None
        )
        table.add_column("campaign: what it moves", no_wrap=False)
        table.add_column("mean", justify="right", no_wrap=True)
        table.add_column(f"{pct} interval", justify="right", no_wrap=True)
        for rec in effects.itertuples():
            table.add_row(
                f"{escape(rec.campaign)}: {escape(target_label(rec.target))}",
                f"{rec.lift_mean:.2f}",
                f"{rec.lift_hdi_low:.2f} – {rec.lift_hdi_high:.2f}",
            )
        console.print(table)
    if fit.kind == "counts":
        _print_counts(fit, console)
    if fit.repeat_info:
        _print_repeat(fit, console)
    for note in fit.notes:
        console.print(f"[dim]•[/] {escape(note)}")
    diag = fit.diagnostics()
    attrs = fit.idata.attrs
    how = f"{attrs.get('method', '?')} ({attrs.get('sampler', '?')}), {fit.n_draws:,} draws"
    if fit.repeat_info:
        how += (
            f"; {fit.repeat_info['stage']} one by one: nuts ({fit.repeat_info.get('sampler', '?')})"
        )
    if diag.ok:
        console.print(
            f"[green]✓ converged[/]: {how}; R-hat {diag.rhat_max:.3f}, ESS bulk "
            f"{diag.ess_bulk_min:,.0f} / tail {diag.ess_tail_min:,.0f}, "
            f"{diag.divergences} divergences"
        )
    else:
        console.print(
            "[bold red]⚠ NOT CONVERGED — do not trust these numbers yet:[/] "
            f"[red]{escape('; '.join(diag.problems))}[/] ({escape(how)}). "
            "Try more --draws/--tune, or a simpler model."
        )
    unmapped = data.get("unmapped") or {}
    if unmapped:
        shown = ", ".join(f"{k} ({v:,})" for k, v in list(unmapped.items())[:5])
        more = f" and {len(unmapped) - 5} more" if len(unmapped) > 5 else ""
        console.print(
            f"[yellow]⚠ event names not in the stage map were skipped: {escape(shown)}{more}[/]"
        )


def _print_counts(fit: FittedFunnel, console: Console) -> None:
    """A counts fit: carryover and saturation, what each campaign brought, the holdout."""
    from funnelsim.inference.count_fit import contributions, holdout_check

    effects = fit.effects()
    if len(effects):
        table = Table(title="Carryover and saturation", title_justify="left", box=None)
        table.add_column("campaign", no_wrap=True)
        table.add_column("half-life (days)", justify="right", no_wrap=True)
        table.add_column("half-saturation", justify="right", no_wrap=True)
        for rec in effects.drop_duplicates("campaign").itertuples():
            table.add_row(
                escape(rec.campaign),
                f"{rec.half_life_days_mean:.1f}",
                f"{rec.half_saturation_mean:,.0f}/day",
            )
        console.print(table)
        contrib = contributions(fit)
        mine = contrib[contrib["stage"] == fit.goal]
        pct = f"{HDI_PROB:.0%}"
        title = f"Extra entries into {fit.goal}, by campaign"
        table = Table(title=title, title_justify="left", box=None, min_width=len(title))
        table.add_column("campaign", no_wrap=True)
        table.add_column("mean", justify="right", no_wrap=True)
        table.add_column(f"{pct} interval", justify="right", no_wrap=True)
        for rec in mine.itertuples():
            table.add_row(
                escape(rec.campaign),
                f"{rec.contribution_mean:,.0f}",
                f"{rec.contribution_hdi_low:,.0f} – {rec.contribution_hdi_high:,.0f}",
            )
        console.print(table)
    held = holdout_check(fit)
    if len(held):
        table = Table(
            title=f"Holdout: the last {int(held['periods'].iloc[0])} periods, forecast unseen",
            title_justify="left",
            box=None,
        )
        table.add_column("series", no_wrap=True)
        table.add_column("mean abs error", justify="right", no_wrap=True)
        table.add_column("inside 90% interval", justify="right", no_wrap=True)
        for rec in held.itertuples():
            table.add_row(
                f"{escape(rec.stage)} ({rec.kind})",
                f"{rec.mean_abs_pct_error:.1f}%",
                f"{rec.coverage_90:.0%}",
            )
        console.print(table)


def _print_repeat(fit: FittedFunnel, console: Console) -> None:
    """The repeat stage fitted customer by customer, both models side by side (and the
    kinds of customer of a classes model)."""
    from funnelsim.inference.repeat import class_summary, model_name, planner_summary

    info = fit.repeat_info
    pct = f"{HDI_PROB:.0%}"
    kinds = list(dict.fromkeys((info["heterogeneity"], "none")))
    models = {k: fit.repeat_model(k, max_draws=2000) for k in kinds}
    summaries = {k: planner_summary(m, HDI_PROB) for k, m in models.items()}
    title = f"{info['stage']}: {info['customers']:,} customers, one by one"
    table = Table(title=escape(title), title_justify="left", box=None)
    table.add_column("", no_wrap=False)
    for k in kinds:
        table.add_column(model_name(k), justify="right", no_wrap=True)
    first = summaries[kinds[0]]
    for i, quantity in enumerate(first["quantity"]):
        cells = []
        for k in kinds:
            rec = summaries[k].iloc[i]
            share = "top 20%" in quantity
            fmt = (
                (lambda v: f"{v:.0%}")
                if share
                else (lambda v: f"{v:,.2f}" if v < 10 else f"{v:,.0f}")
            )
            same = abs(rec["high"] - rec["low"]) < 1e-12
            cells.append(
                fmt(rec["mean"])
                if same
                else f"{fmt(rec['mean'])} ({fmt(rec['low'])}–{fmt(rec['high'])})"
            )
        table.add_row(escape(quantity), *cells)
    console.print(table)
    if info["heterogeneity"].startswith("classes"):
        classes = class_summary(models[info["heterogeneity"]], HDI_PROB)
        table = Table(title="The kinds of customer", title_justify="left", box=None)
        table.add_column("kind", justify="right", no_wrap=True)
        table.add_column("share", justify="right", no_wrap=True)
        table.add_column("repeats per 30 days", justify="right", no_wrap=True)
        table.add_column("mean days to drop out", justify="right", no_wrap=True)
        for rec in classes.itertuples():
            table.add_row(
                str(rec[1]),
                f"{rec.share:.0%} ({rec.share_low:.0%}–{rec.share_high:.0%})",
                f"{rec.repeats_per_30_days:.2f} ({rec.repeats_per_30_days_low:.2f}–"
                f"{rec.repeats_per_30_days_high:.2f})",
                f"{rec.days_to_drop_out:,.0f} ({rec.days_to_drop_out_low:,.0f}–"
                f"{rec.days_to_drop_out_high:,.0f})",
            )
        console.print(table)
    console.print(f"[dim]  in brackets: {pct} intervals[/]")


def print_nowcast(result, console: Console) -> None:  # noqa: ANN001 - Nowcast
    """Occupancy per stage at the end of the data, and the repeat stage's outlook."""
    when = f"{result.end:%Y-%m-%d}"
    title = f"Where the funnel stands at the end of the data ({when})"
    table = Table(title=title, title_justify="left", box=None, min_width=len(title))
    table.add_column("stage", no_wrap=True)
    table.add_column("last seen there", justify="right", no_wrap=True)
    table.add_column("still there", justify="right", no_wrap=True)
    table.add_column("90% interval", justify="right", no_wrap=True)
    for rec in result.occupancy.itertuples():
        table.add_row(
            escape(rec.stage),
            "—"
            if rec.last_seen is None or rec.last_seen != rec.last_seen
            else f"{rec.last_seen:,}",
            f"{rec.active_mean:,.0f}",
            f"{rec.active_p05:,.0f} – {rec.active_p95:,.0f}",
        )
    console.print(table)
    total = result.repeats_total
    if total is not None:
        lo, hi = np.quantile(total, [0.05, 0.95])
        console.print(
            f"Repeats in {escape(result.repeat_stage)} by these customers in the next "
            f"{result.horizon:g} days: [bold]{total.mean():,.0f}[/] (90%: {lo:,.0f} – {hi:,.0f})"
        )


def print_rolling_backtest(bts, console: Console, kind: str = "journeys") -> None:  # noqa: ANN001
    """A rolling backtest: per stage and cutoff, the forecast total against what
    happened (all customers), then each stage's mean absolute error and how often the
    interval held the truth."""
    from funnelsim.inference.backtest import main_cohort, rolling_tables

    totals, _ = rolling_tables(bts)
    rows = totals[totals["cohort"] == main_cohort(totals)]
    title = f"Rolling backtest: {len(bts)} cutoffs, entries after each"
    table = Table(title=title, title_justify="left", box=None, min_width=min(len(title), 78))
    first = "snapshots in" if kind == "snapshots" else "entries into"
    for name, justify in ((first, "left"), ("cutoff", "left"), ("days", "right"),
                          ("forecast", "right"), ("90% interval", "right"),
                          ("actual", "right"), ("error", "right")):  # fmt: skip
        table.add_column(name, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    summary = []
    for stage in dict.fromkeys(rows["stage"]):
        mine = rows[rows["stage"] == stage]
        if (mine["actual"] == 0).all() and (mine["forecast_mean"] < 0.5).all():
            continue
        errors, inside = [], 0
        for k, rec in enumerate(mine.itertuples()):
            err = rec.forecast_mean / rec.actual - 1 if rec.actual else float("nan")
            ok = rec.forecast_p05 <= rec.actual <= rec.forecast_p95
            inside += ok
            if not np.isnan(err):
                errors.append(abs(err))
            table.add_row(
                f"[bold]{escape(stage)}[/]" if k == 0 else "",
                str(rec.cutoff),
                f"{rec.days:g}",
                f"{rec.forecast_mean:,.0f}",
                f"{rec.forecast_p05:,.0f} – {rec.forecast_p95:,.0f}",
                f"{rec.actual:,.0f}" + ("" if ok else " [yellow]✗[/]"),
                "" if np.isnan(err) else f"{err:+.1%}",
            )
        mae = f"mean abs error {np.mean(errors):.1%}" if errors else "no entries"
        summary.append(f"{escape(stage)}: {mae}, truth inside the interval {inside} of {len(mine)}")
    console.print(table)
    for line in summary:
        console.print("• " + line)
    console.print(f"[dim]{_backtest_note(kind)}[/]")


def _backtest_note(kind: str) -> str:
    if kind == "counts":
        return (
            "Counts do not say who is who: the held-out periods are forecast from where "
            "the Kalman filter leaves the funnel, with the fitted campaign effects and spend."
        )
    if kind == "snapshots":
        return (
            "Known customers' later snapshots, each customer moved from their last "
            "snapshot before the cutoff; snapshots do not record arrivals, so new "
            "customers are not forecast."
        )
    return (
        "Forecasts use the fit's base rates (campaign lifts are left out) and a steady "
        "arrival rate."
    )


def print_backtest(  # noqa: ANN001 - a Backtest
    bt, console: Console, period_days: float = 7.0, kind: str = "journeys"
) -> None:
    """Forecast against what happened, per stage and cohort; interval coverage per period."""
    from funnelsim.inference.backtest import coverage

    days = (bt.end - bt.cutoff) / np.timedelta64(1, "D")
    title = (
        f"Backtest: fitted up to {bt.cutoff:%Y-%m-%d}, forecast {days:.0f} days "
        f"to {bt.end:%Y-%m-%d}"
    )
    table = Table(title=title, title_justify="left", box=None, min_width=min(len(title), 78))
    table.add_column("snapshots in" if kind == "snapshots" else "entries into", no_wrap=True)
    table.add_column("forecast", justify="right", no_wrap=True)
    table.add_column("90% interval", justify="right", no_wrap=True)
    table.add_column("actual", justify="right", no_wrap=True)
    table.add_column("error", justify="right", no_wrap=True)
    labels = {"all": None, "known": "  customers known by then", "new": "  new customers"}
    totals = bt.totals
    cohorts = list(dict.fromkeys(totals["cohort"]))
    main = "all" if "all" in cohorts else cohorts[0]
    for stage in dict.fromkeys(totals["stage"]):
        rows = totals[totals["stage"] == stage].set_index("cohort")
        if rows.loc[main, "actual"] == 0 and rows.loc[main, "forecast_mean"] < 0.5:
            continue
        for cohort in [main] + [c for c in ("known", "new") if c in cohorts and c != main]:
            rec = rows.loc[cohort]
            if cohort != main and rec["actual"] == 0 and rec["forecast_mean"] < 0.5:
                continue
            err = (rec["forecast_mean"] / rec["actual"] - 1) if rec["actual"] else float("nan")
            inside = rec["forecast_p05"] <= rec["actual"] <= rec["forecast_p95"]
            table.add_row(
                f"[bold]{escape(stage)}[/]" if cohort == main else labels[cohort],
                f"{rec['forecast_mean']:,.0f}",
                f"{rec['forecast_p05']:,.0f} – {rec['forecast_p95']:,.0f}",
                f"{rec['actual']:,.0f}" + ("" if inside else " [yellow]✗[/]"),
                "" if np.isnan(err) else f"{err:+.1%}",
            )
    console.print(table)
    cells = bt.periods[bt.periods["cohort"] == main]
    cells = cells[(cells["actual"] > 0) | (cells["forecast_mean"] >= 0.5)]
    what = "Snapshots" if kind == "snapshots" else "Entries"
    console.print(
        f"{what} per stage and {period_days:g}-day period inside their 90% interval: "
        f"[bold]{coverage(cells, main):.0%}[/] of {len(cells)} (✗: a total outside its "
        "interval)"
    )
    if bt.homogeneous is not None:
        stage = bt.fit.repeat_info["stage"]
        het = bt.totals.set_index(["stage", "cohort"]).loc[(stage, "known")]
        hom = bt.homogeneous.set_index(["stage", "cohort"]).loc[(stage, "known")]
        actual = het["actual"]
        if actual:
            console.print(
                f"{escape(stage)} by customers known by then: customers differ "
                f"{het['forecast_mean']:,.0f} ({het['forecast_mean'] / actual - 1:+.1%}), "
                f"everyone alike {hom['forecast_mean']:,.0f} "
                f"({hom['forecast_mean'] / actual - 1:+.1%}), actual {actual:,.0f}"
            )
    console.print(f"[dim]{_backtest_note(kind)}[/]")
