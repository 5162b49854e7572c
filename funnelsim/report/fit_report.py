"""``FIT.report.html``: what a fit learned, how sure it is, and whether to trust it.

One self-contained page: the data the fit saw, a loud box when convergence checks fail,
the model's notes on what the data cannot tell apart, the rates as dwell and routing
(the form planners write scenarios in) and per day, campaign lifts, and three plots —
rates with their intervals, the posterior predictive check of transition counts, and
lifts. Plotting functions take ``ax=`` and return it (they never compute a fit).
"""

from __future__ import annotations

import base64
import html
import io
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from funnelsim import __version__  # noqa: E402
from funnelsim.inference.fitted import HDI_PROB, FittedFunnel, target_label  # noqa: E402
from funnelsim.report.html import _STYLE  # noqa: E402

__all__ = ["fit_report_html", "plot_rates", "plot_ppc", "plot_lifts"]

_EXTRA = """
.alarm { padding: 0.6rem 0.9rem; background: #fdecea; border-left: 5px solid #d32f2f;
         max-width: 52rem; font-weight: 600; }
.ok { padding: 0.5rem 0.8rem; background: #f3f7f3; border-left: 4px solid #4caf50;
      max-width: 52rem; }
ul.notes li { max-width: 52rem; margin-bottom: 0.3rem; }
"""


def _esc(value: object) -> str:
    return html.escape(str(value))


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _log_axis(ax: plt.Axes, lo: float, hi: float) -> None:
    """Log scale from ``lo`` to ``hi`` labelled 0.01, 0.02, 0.05, 0.1 … (only powers of
    ten when the range spans many decades)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_xscale("log")
    ax.set_xlim(lo, hi)
    decades = np.log10(hi / lo)
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0) if decades < 3 else (1.0,)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def plot_rates(fit: FittedFunnel, ax: plt.Axes | None = None) -> plt.Axes:
    """Posterior mean and 94% HDI of every rate (per day, log scale), one row per edge
    (and segment)."""
    table = fit.rates()
    if ax is None:
        _, ax = plt.subplots(figsize=(7.5, 0.32 * len(table) + 1.2))
    labels = [
        f"{r.source} → {r.target}" + (f"  [{r.segment}]" if len(fit.segments) > 1 else "")
        for r in table.itertuples()
    ]
    y = np.arange(len(table))[::-1]
    ax.hlines(y, table["rate_hdi_low"], table["rate_hdi_high"], color="#4c72b0", lw=2.5)
    ax.plot(table["rate_mean"], y, "o", color="#1f3b66", ms=5)
    ax.set_yticks(y, labels)
    ax.set_ylim(-0.7, len(table) - 0.3)
    positive = table["rate_mean"][table["rate_mean"] > 0]
    lo = max(float(table["rate_hdi_low"].min()), float(positive.min()) / 20) / 1.3
    _log_axis(ax, lo, float(table["rate_hdi_high"].max()) * 1.3)
    ax.set_xlabel("rate per day (mean dwell in days = 1 / sum of a stage's rates)")
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(f"Rates: posterior mean and {HDI_PROB:.0%} interval", loc="left")
    return ax


def plot_ppc(fit: FittedFunnel, ax: plt.Axes | None = None) -> plt.Axes | None:
    """Observed transition counts against the 94% range the fitted model predicts for
    them (None when the fit has no posterior predictive)."""
    idata = fit.idata
    if not hasattr(idata, "posterior_predictive") or not hasattr(idata, "observed_data"):
        return None
    name = next(iter(idata.observed_data.data_vars), None)
    if name is None or name not in idata.posterior_predictive:
        return None
    observed = idata.observed_data[name]
    pred = idata.posterior_predictive[name]
    dims = [d for d in observed.dims]
    obs = observed.values.ravel()
    draws = pred.values.reshape(-1, obs.size)
    lo, med, hi = np.quantile(draws, [(1 - HDI_PROB) / 2, 0.5, (1 + HDI_PROB) / 2], axis=0)
    labels = []
    for idx in np.ndindex(observed.shape):
        parts = [str(observed[dims[k]].values[i]) for k, i in enumerate(idx)]
        labels.append(" · ".join(p.replace(" -> ", " → ") for p in parts if p != "all"))
    seen = (obs > 0) | (hi > 0)  # moves never recorded (silent drop-off) have nothing to check
    if not seen.any():
        return None
    obs, lo, med, hi = obs[seen], lo[seen], med[seen], hi[seen]
    kept = [lab for lab, keep in zip(labels, seen) if keep]
    labels = [f"{lab}  ({o:,.0f})" for lab, o in zip(kept, obs)]
    scale = np.maximum(med, 1.0)
    if ax is None:
        _, ax = plt.subplots(figsize=(7.5, 0.32 * len(obs) + 1.2))
    y = np.arange(len(obs))[::-1]
    ax.axvline(1.0, color="#999", ls="--", lw=1)
    ax.hlines(y, lo / scale, hi / scale, color="#bbb", lw=6, label=f"model: {HDI_PROB:.0%} range")
    inside = (obs >= lo) & (obs <= hi)
    ratio = obs / scale
    ax.plot(ratio[inside], y[inside], "o", color="#2e7d32", ms=5, label="data (inside)")
    if (~inside).any():
        ax.plot(ratio[~inside], y[~inside], "X", color="#d32f2f", ms=7, label="data (outside)")
    ax.set_yticks(y, labels)
    ax.set_ylim(-0.7, len(obs) - 0.3)
    ax.set_xlabel("moves in the data ÷ the model's median for them (1 = as expected)")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    ax.set_title("Posterior predictive check of the observed moves", loc="left")
    return ax


def plot_lifts(fit: FittedFunnel, ax: plt.Axes | None = None) -> plt.Axes | None:
    """Campaign lifts (rate multiplier at full pressure) with their intervals."""
    table = fit.effects()
    if table.empty:
        return None
    if ax is None:
        _, ax = plt.subplots(figsize=(7.5, 0.4 * len(table) + 1.2))
    y = np.arange(len(table))[::-1]
    ax.axvline(1.0, color="#999", ls="--", lw=1)
    ax.hlines(y, table["lift_hdi_low"], table["lift_hdi_high"], color="#dd8452", lw=2.5)
    ax.plot(table["lift_mean"], y, "o", color="#8c4a1c", ms=5)
    ax.set_yticks(y, [f"{c}: {target_label(t)}" for c, t in zip(table.campaign, table.target)])
    ax.set_ylim(-0.7, len(table) - 0.3)
    ax.set_xlabel("lift: rate multiplier at full pressure (1 = no effect)")
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(f"Campaign effects: mean and {HDI_PROB:.0%} interval", loc="left")
    return ax


def _table(frame: pd.DataFrame, formats: dict[str, str]) -> str:
    head = "".join(
        f"<th class='text'>{_esc(c)}</th>" if c not in formats else f"<th>{_esc(c)}</th>"
        for c in frame.columns
    )
    rows = []
    for rec in frame.itertuples(index=False):
        cells = []
        for col, value in zip(frame.columns, rec):
            if col in formats:
                cells.append(f"<td>{format(value, formats[col])}</td>")
            else:
                cells.append(f"<td class='text'>{_esc(value)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def plot_repeat_rates(fit: FittedFunnel, ax: plt.Axes | None = None) -> plt.Axes:
    """How often customers of the repeat stage repeat: the share of customers in bands of
    repeats per 30 days under the fitted gamma distribution of their rates (posterior
    mean and 94% interval), with the one rate of the "everyone alike" model marked."""
    from scipy import special

    if ax is None:
        ax = plt.figure(figsize=(6.4, 3.2), layout="constrained").add_subplot()
    info = fit.repeat_info
    g = fit.repeat_model("gamma", max_draws=500).params
    edges = np.array([0.0, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, np.inf])  # repeats per 30 days
    cdf = special.gammainc(g["r"][:, None], g["alpha"][:, None] * edges[None, :] / 30.0)
    share = np.diff(cdf, axis=1)
    lo, hi = np.quantile(share, [0.03, 0.97], axis=0)
    mean = share.mean(axis=0)
    labels = [f"{a:g}–{b:g}" if np.isfinite(b) else f"{a:g}+" for a, b in zip(edges, edges[1:])]
    pos = np.arange(len(labels))
    ax.bar(pos, mean, color="#6baed6", yerr=[mean - lo, hi - mean], ecolor="#555555",
           capsize=3, label="customers differ")  # fmt: skip
    one = float(fit.repeat_model("none", max_draws=300).params["lam"].mean() * 30.0)
    k = int(np.searchsorted(edges, one, side="right") - 1)
    ax.bar(pos[k], 1.0, fill=False, edgecolor="#d95f0e", lw=1.4, ls="--",
           label=f"everyone alike: all at {one:.2g}")  # fmt: skip
    ax.set_xticks(pos, labels)
    ax.set_xlabel(f"repeats in {info['stage']} per 30 days, while still a customer")
    ax.set_ylabel("share of customers")
    ax.yaxis.set_major_formatter(lambda v, _: f"{v:.0%}")
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=8, frameon=False)
    ax.grid(alpha=0.25, axis="y")
    return ax


def _repeat_section(fit: FittedFunnel) -> list[str]:
    from funnelsim.inference.repeat import class_summary, loo_text, model_name, planner_summary

    info = fit.repeat_info
    stage = info["stage"]
    kinds = list(dict.fromkeys((info["heterogeneity"], "none")))
    labels = {k: model_name(k) for k in kinds}
    rows = []
    for k in kinds:
        summary = planner_summary(fit.repeat_model(k, max_draws=2000), HDI_PROB)
        for rec in summary.itertuples():
            low, high = f"{HDI_PROB:.0%} low", f"{HDI_PROB:.0%} high"
            pct = "top 20%" in rec.quantity  # a share: shown in percent
            scale, name = (100.0, f"{rec.quantity} (%)") if pct else (1.0, rec.quantity)
            rows.append(
                {"model": labels[k], "quantity": name, "mean": rec.mean * scale,
                 low: rec.low * scale, high: rec.high * scale}
            )  # fmt: skip
    table = pd.DataFrame(rows)
    fmt = {c: ".3g" for c in table.columns if c not in ("model", "quantity")}
    parts = [
        f"<h2>{_esc(stage)}: {info['customers']:,} customers, one by one</h2>",
        "<p>The stage was fitted from each customer's own history (repeats, the time of the "
        "last one, the time followed), twice: with repeat and drop-out rates that differ "
        "between customers (each drawn from a gamma distribution: the Pareto/NBD model; or, "
        "with classes, a few kinds of customer each with their own rates) and with one rate "
        f"for everyone. {_esc(loo_text(info['loo']))}. Nowcasts and backtests use each "
        "customer's own history under the first.</p>",
        _table(table, fmt),
    ]
    if info["heterogeneity"].startswith("classes"):
        classes = class_summary(fit.repeat_model(max_draws=2000), HDI_PROB)
        parts.append("<h3>The kinds of customer</h3>")
        parts.append(_table(classes, {c: ".3g" for c in classes.columns if c != "class"}))
    if info["heterogeneity"] == "gamma":
        fig = plot_repeat_rates(fit).figure
        parts.append(
            f"<figure><img alt='repeat rates' src='data:image/png;base64,{_png(fig)}'>"
            "<figcaption>How often customers repeat while they are still customers: the "
            "share of customers in each band of repeats per 30 days (bars: posterior mean; "
            "whiskers: 94% intervals). A few repeat often, many rarely; the dashed box is the "
            "model in which everyone repeats at one rate."
            "</figcaption></figure>"
        )
    return parts


def _routing_table(fit: FittedFunnel) -> str:
    table = fit.dwell_routing()
    rows = []
    for rec in table.itertuples():
        seg = f" [{rec.segment}]" if len(fit.segments) > 1 else ""
        if rec.to == "(dwell days)":
            what = f"<b>{_esc(rec.stage)}{_esc(seg)}</b>: mean time before the next move"
            val = f"{rec.mean:.1f} days"
            rng = f"{rec.hdi_low:.1f} – {rec.hdi_high:.1f}"
        else:
            what = f"&nbsp;&nbsp;then to {_esc(rec.to)}"
            val = f"{rec.mean:.0%}"
            rng = f"{rec.hdi_low:.0%} – {rec.hdi_high:.0%}"
        rows.append(f"<tr><td>{what}</td><td>{val}</td><td>{rng}</td></tr>")
    head = f"<tr><th></th><th>estimate</th><th>{HDI_PROB:.0%} interval</th></tr>"
    return f"<table>{head}{''.join(rows)}</table>"


def fit_report_html(fit: FittedFunnel, title: str = "fit") -> str:
    """The report page of a fit as one HTML string (plots inlined)."""
    attrs = fit.idata.attrs
    data: dict[str, Any] = fit.data
    diag = fit.diagnostics()
    parts = [f"<h1>What the history says: {_esc(title)}</h1>"]
    source = (
        f"{data.get('customers', '?'):,} customers"
        if isinstance(data.get("customers"), int)
        else f"{data['periods']} periods of {len(data.get('series', []))} counts, "
        f"{len(data.get('campaigns', []))} campaigns"
        if fit.kind == "counts"
        else "the data"
    )
    span = f"{str(data.get('start', ''))[:10]} to {str(data.get('end', ''))[:10]}"
    parts.append(
        f"<p class='lead'>Fitted from {_esc(data.get('file', ''))} ({_esc(fit.kind)}: "
        f"{_esc(source)}, {_esc(span)}) with the {_esc(attrs.get('method', '?'))} method "
        f"({_esc(attrs.get('sampler', '?'))}), {fit.n_draws:,} posterior draws. Goal stage: "
        f"<b>{_esc(fit.goal)}</b>; new customers enter at <b>{_esc(fit.entry)}</b>.</p>"
    )
    if diag.ok:
        parts.append(
            "<p class='ok'>Convergence checks passed: R-hat "
            f"{diag.rhat_max:.3f} ≤ 1.01, bulk ESS ≥ {diag.ess_bulk_min:,.0f}, tail ESS ≥ "
            f"{diag.ess_tail_min:,.0f} (both ≥ 400 needed), {diag.divergences} divergences.</p>"
        )
    else:
        parts.append(
            "<p class='alarm'>⚠ The sampler did not converge well enough to trust these "
            "numbers: " + _esc("; ".join(diag.problems)) + ". Run longer (--draws, --tune), "
            "or simplify the model.</p>"
        )
    if fit.notes:
        parts.append("<h2>What the data can and cannot tell</h2><ul class='notes'>")
        parts += [f"<li>{_esc(n)}</li>" for n in fit.notes]
        parts.append("</ul>")
    unmapped = data.get("unmapped") or {}
    if unmapped:
        listed = ", ".join(f"{k} ({v:,})" for k, v in list(unmapped.items())[:8])
        parts.append(
            f"<p class='note'>Event names not in the stage map, skipped: {_esc(listed)}.</p>"
        )
    parts.append("<h2>The journey as learned: dwell and routing</h2>")
    parts.append(
        "<p class='note'>How long people stay in each stage before their next move "
        "(posterior median, in days) and where that move takes them (posterior mean "
        f"share), each with its {HDI_PROB:.0%} credible interval — the form of "
        "<code>dwell_days</code> and <code>next</code> in a scenario file."
        + (
            " With campaigns fitted, these are the rates with no campaign running; each "
            "campaign's lift (below) multiplies the rate it moves."
            if "lift" in fit.idata.posterior
            else ""
        )
        + "</p>"
    )
    parts.append(_routing_table(fit))
    parts.append(
        f"<figure><img alt='rates' src='data:image/png;base64,{_png(plot_rates(fit).figure)}'>"
        "<figcaption>Each row is a move between stages: the dot is the posterior mean rate "
        f"per day and the bar the {HDI_PROB:.0%} credible interval (the rate is in it with "
        f"{HDI_PROB:.0%} probability given the data and the priors). Wide bars are rates the "
        "data say little about.</figcaption></figure>"
    )
    if fit.repeat_info:
        parts += _repeat_section(fit)
    parts.append("<h2>Rates per day</h2>")
    rates = fit.rates()
    if len(fit.segments) == 1:
        rates = rates.drop(columns="segment")
    low, high = f"{HDI_PROB:.0%} low", f"{HDI_PROB:.0%} high"
    rates = rates.rename(
        columns={"rate_mean": "mean per day", "rate_hdi_low": low, "rate_hdi_high": high}
    )
    parts.append(_table(rates, {"mean per day": ".4g", low: ".4g", high: ".4g"}))
    effects = fit.effects()
    if len(effects):
        parts.append("<h2>Campaign effects</h2>")
        effects = effects.assign(target=effects["target"].map(target_label))
        formats = {"lift (mean)": ".3f", low: ".3f", high: ".3f"}
        if "half_life_days_mean" in effects:  # count fits learn carryover and saturation
            effects = effects[
                ["campaign", "target", "lift_mean", "lift_hdi_low", "lift_hdi_high",
                 "half_life_days_mean", "half_saturation_mean"]
            ]  # fmt: skip
            formats |= {"carryover half-life (days)": ".1f", "half-saturation": ",.0f"}
        effects = effects.rename(
            columns={
                "lift_mean": "lift (mean)",
                "lift_hdi_low": low,
                "lift_hdi_high": high,
                "half_life_days_mean": "carryover half-life (days)",
                "half_saturation_mean": "half-saturation",
            }
        )
        parts.append(_table(effects, formats))
        if "half-saturation" in effects:
            parts.append(
                "<p class='note'>Lift: the rate multiplier at full pressure. Half-life: days "
                "until half of a day's spend has stopped working. Half-saturation: the "
                "carried-over spend per day at which a campaign gives half its full lift "
                "(the scenario keys <code>carryover</code> = 0.5<sup>1/half-life</sup> and "
                "<code>half_saturation</code>); intervals are in FIT.effects.csv.</p>"
            )
        ax = plot_lifts(fit)
        assert ax is not None
        parts.append(
            f"<figure><img alt='lifts' src='data:image/png;base64,{_png(ax.figure)}'>"
            "<figcaption>How much each campaign multiplies the rate it targets at full "
            "pressure. An interval that includes 1 (the dashed line) means the data cannot "
            "tell the campaign's effect from none.</figcaption></figure>"
        )
    if fit.kind == "counts":
        from funnelsim.report.count_report import count_sections

        parts += count_sections(fit)
    ax = plot_ppc(fit) if fit.kind != "counts" else None
    if ax is not None:
        parts.append("<h2>Does the model reproduce the data?</h2>")
        parts.append(
            f"<figure><img alt='ppc' src='data:image/png;base64,{_png(ax.figure)}'>"
            "<figcaption>For each move seen in the data (its count in brackets), the grey "
            f"bar is the range of counts the fitted model predicts ({HDI_PROB:.0%} of data "
            "sets simulated from the posterior) and the dot the count in the data, both "
            "divided by the model's median so that every move reads on one scale. Red "
            "crosses outside their bars point to a part of the journey the model does not "
            "describe well.</figcaption></figure>"
        )
    parts.append("<h2>Diagnostics</h2>")
    parts.append(
        _table(
            pd.DataFrame(
                [
                    {"check": "largest R-hat (≤ 1.01)", "value": diag.rhat_max},
                    {"check": "smallest bulk ESS (≥ 400)", "value": diag.ess_bulk_min},
                    {"check": "smallest tail ESS (≥ 400)", "value": diag.ess_tail_min},
                    {"check": "divergent transitions (0)", "value": float(diag.divergences)},
                ]
            ),
            {"value": ".4g"},
        )
    )
    parts.append(
        f"<p class='note'>funnelsim {_esc(__version__)} · draws {_esc(attrs.get('draws', ''))} × "
        f"chains {_esc(attrs.get('chains', ''))} · seed {_esc(attrs.get('seed', ''))}</p>"
    )
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{_esc(title)}</title><style>{_STYLE}{_EXTRA}</style></head><body>"
        + "".join(parts)
        + "</body></html>\n"
    )
