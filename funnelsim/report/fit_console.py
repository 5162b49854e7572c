"""The console view of a fit: dwell and routing with intervals, campaign lifts,
convergence, and the model's notes — readable in an 80-column terminal."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from funnelsim.inference.fitted import HDI_PROB, FittedFunnel, target_label

__all__ = ["print_fit"]


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
    for note in fit.notes:
        console.print(f"[dim]•[/] {escape(note)}")
    diag = fit.diagnostics()
    attrs = fit.idata.attrs
    how = f"{attrs.get('method', '?')} ({attrs.get('sampler', '?')}), {fit.n_draws:,} draws"
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
