"""Fit a journey from history in one call, and write what a fit produces.

:func:`fit_history` reads an event log or CRM snapshots, reduces them to sufficient
statistics, chooses the model (exact conjugate, Gibbs, or NUTS in PyMC) and returns a
:class:`~funnelsim.inference.fitted.FittedFunnel`. :func:`write_fit` writes ``FIT.nc``
with ``FIT.rates.csv``, ``FIT.effects.csv`` (when campaigns were fitted),
``FIT.report.html`` and optionally a starter scenario, all or nothing.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
import yaml

from funnelsim.errors import Problem, ScenarioError
from funnelsim.funnel import LOST, Funnel
from funnelsim.inference.fitted import FittedFunnel

__all__ = [
    "fit_history",
    "fit_paths",
    "load_funnel_file",
    "write_fit",
    "starter_scenario",
    "GOAL_NAMES",
]

#: stage names taken for the goal when no funnel file says which stage it is
GOAL_NAMES = ("conversion", "purchase", "purchased", "converted", "customer", "won", "sale")

warnings.filterwarnings("ignore", message=".*BLAS.*")  # PyTensor without BLAS: harmless here


def load_funnel_file(ref: str | Path) -> Funnel:
    """The funnel of a funnel YAML, of a scenario file's ``funnel:``, or of a preset name;
    raises :class:`~funnelsim.errors.ScenarioError` with located problems."""
    from funnelsim.scenario.loader import collect_problems
    from funnelsim.scenario.runner import build_funnel
    from funnelsim.scenario.schema import FunnelSpec

    ref = str(ref)
    raw: dict[str, Any] = {"horizon": {"start": "2026-01-01", "periods": 1}, "funnel": ref}
    problems = [p for p in collect_problems(raw, Path("."), {}, ref) if p.path[:1] == ("funnel",)]
    if problems:
        raise ScenarioError(problems, ref)
    return build_funnel(FunnelSpec.model_validate(raw["funnel"]))


def _goal(stages: Sequence[str]) -> str:
    for name in GOAL_NAMES:
        if name in stages:
            return name
    return [s for s in stages if s != LOST][-1]


def _edges_and_priors(
    funnel: Funnel | None,
) -> tuple[list[tuple[str, str]] | None, dict[tuple[str, str], float] | None]:
    if funnel is None:
        return None, None
    return funnel.edges, {(a, b): funnel.rate(a, b) for a, b in funnel.edges}


def fit_history(
    data: str | Path,
    kind: str = "journeys",
    *,
    columns: str | dict[str, str] | None = None,
    stage_map: str | Path | None = None,
    funnel: str | Path | Funnel | None = None,
    campaigns: str | Path | None = None,
    spend: str | Path | None = None,
    drop_off: str = "auto",
    method: str = "auto",
    prior_strength: float = 1.0,
    sampler: str = "nutpie",
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    seed: int | None = None,
    end: str | None = None,
    priors: str | Path | None = None,
    holdout: int = 0,
    heterogeneity: str = "none",
    repeat_stage: str | None = None,
    until: str | pd.Timestamp | None = None,
    progress: bool = False,
    on_read: Callable[[int, int, int], None] | None = None,
    on_phase: Callable[[str], None] | None = None,
) -> FittedFunnel:
    """Fit journey rates (and campaign effects) from an event log (``kind="journeys"``)
    or CRM snapshots (``kind="snapshots"``).

    ``funnel`` fixes the structure (which edges exist) and gives weak prior centres;
    without it, edges come from the data. ``prior_strength`` (journeys) is how many
    observed moves each rate's prior is worth (default 1: weak; raise it to hold the
    funnel's rates more firmly). ``campaigns`` is a YAML file in the scenario
    ``campaigns:`` syntax naming which edges or arrival channels each campaign may move
    (its lifts are prior centres), with spend from ``spend`` (the spend CSV format).

    ``kind="counts"`` fits aggregate funnel counts (``period,stage,count[,kind][,segment]``)
    and ``spend`` (one column per campaign) with the funnel-structured media-mix model
    of :mod:`funnelsim.inference.aggregate`; ``funnel`` is required, ``priors`` is the
    optional priors YAML and ``holdout`` the number of final periods left out of the
    fit and forecast from it.

    ``heterogeneity="gamma"`` (journeys) also fits the repeat stage (``repeat_stage``,
    default: the stage with the most repeat events) customer by customer, with repeat
    and drop-out rates that differ between customers (``"classes:K"``: K kinds of
    customer, each with its own rates), beside the same stage with one rate for
    everyone, and compares the two by LOO
    (:mod:`funnelsim.inference.repeat`); nowcasts and forecasts then use each
    customer's own history. ``until`` fits only the data up to that time (a backtest's
    cutoff): journeys' events, snapshots' rows, and for counts the periods that start
    before it (the later ones are held out and forecast).
    """
    if kind not in ("journeys", "snapshots", "counts"):
        raise ValueError("kind must be 'journeys', 'snapshots' or 'counts'")
    say = on_phase or (lambda text: None)
    say(f"reading {Path(data).name} …")
    structure = funnel if isinstance(funnel, Funnel) or funnel is None else load_funnel_file(funnel)
    if kind == "counts":
        return _fit_counts(
            data, structure, spend, priors, columns, holdout,
            dict(sampler=sampler, draws=draws, tune=tune, chains=chains, seed=seed,
                 progress=progress),
            say,
            until=None if until is None else pd.Timestamp(until),
        )  # fmt: skip
    stages = [s for s in structure.stages if s != LOST] if structure is not None else None
    edges, centres = _edges_and_priors(structure)
    end_ts = pd.Timestamp(end) if end is not None else None
    if kind == "journeys":
        from funnelsim.data.events import read_events
        from funnelsim.inference.journeys import fit_journeys
        from funnelsim.inference.repeat import parse_heterogeneity

        try:
            parse_heterogeneity(heterogeneity)
        except ValueError as exc:
            raise _fit_problem(
                "--heterogeneity",
                str(exc),
                "gamma: customers' repeat and drop-out rates differ; classes:3: three kinds "
                "of customer, each with its own rates; none: one rate for all",
            ) from None
        rows: list | None = [] if heterogeneity != "none" else None
        stats = read_events(
            data, columns=columns, stage_map=stage_map, stages=stages, end=end_ts,
            progress=on_read, rows=rows, until=None if until is None else pd.Timestamp(until),
        )  # fmt: skip
        repeat_at = _repeat_stage(stats, repeat_stage, str(data)) if rows is not None else None
        fitted_campaigns = []
        if campaigns is not None:
            from funnelsim.inference.campaign_data import campaigns_for_stats

            fitted_campaigns = campaigns_for_stats(stats, campaigns, spend)
        say(_fitting_line(stats.n_customers, method, sampler, bool(fitted_campaigns)))
        t0 = time.perf_counter()
        idata = fit_journeys(
            stats,
            edges=edges,
            prior_rates=centres,
            prior_strength=prior_strength,
            campaigns=fitted_campaigns,
            drop_off=drop_off,
            method=method,
            sampler=sampler,
            draws=draws,
            tune=tune,
            chains=chains,
            seed=seed,
            progress=progress,
        )
        if repeat_at is not None and rows is not None:
            say(f"fitting {repeat_at!r} customer by customer (customers differ, and alike) …")
            _add_repeat_fit(
                idata, stats, rows, repeat_at, heterogeneity,
                dict(sampler=sampler, draws=draws, tune=tune, chains=chains, seed=seed,
                     progress=progress),
            )  # fmt: skip
        _add_last_events(idata, stats)
        summary = _journey_summary(stats)
        data_stages = stats.stages
    else:
        if campaigns is not None:
            raise ScenarioError(
                [Problem(("--campaigns",), "campaign effects are fitted from journeys only")],
                str(campaigns),
            )
        from funnelsim.data.snapshots import read_snapshots
        from funnelsim.inference.snapshots import fit_snapshots, snapshot_stats

        frame = read_snapshots(data, columns=columns, stage_map=stage_map, stages=stages)
        if until is not None:  # a backtest's cutoff: the snapshots up to it
            frame = frame[frame["date"] <= pd.Timestamp(until)].reset_index(drop=True)
        order = stages or _order_of(frame)
        sstats = snapshot_stats(frame, order)
        say(_fitting_line(frame["customer_id"].nunique(), "nuts", sampler, False, "snapshots"))
        t0 = time.perf_counter()
        idata = fit_snapshots(
            sstats,
            edges=edges,
            prior_rates={f"{a} -> {b}": r for (a, b), r in (centres or {}).items() if a != b},
            sampler=sampler,
            draws=draws,
            tune=tune,
            chains=chains,
            seed=seed,
            progress=progress,
        )
        summary = {
            "file": Path(data).name,
            "customers": int(frame["customer_id"].nunique()),
            "rows": len(frame),
            "start": str(frame["date"].min()),
            "end": str(frame["date"].max()),
        }
        data_stages = tuple(order) + ((LOST,) if LOST not in order else ())
    idata.attrs["fit_seconds"] = round(time.perf_counter() - t0, 3)
    if "sampling_seconds" not in idata.attrs:  # exact methods: the fit is the sampling
        idata.attrs["sampling_seconds"] = idata.attrs["fit_seconds"]
    summary["file"] = Path(data).name
    goal = structure.goal if structure is not None else _goal(data_stages)
    entry = structure.entry if structure is not None else _entry(summary, data_stages)
    return FittedFunnel(idata, stages=data_stages, goal=goal, entry=entry, kind=kind, data=summary)


def _fit_problem(where: str, message: str, hint: str, file: str = "") -> ScenarioError:
    return ScenarioError([Problem((where,), message, hint)], file or where)


def _repeat_stage(stats: Any, wanted: str | None, label: str) -> str:
    """The stage fitted customer by customer: ``wanted``, else the one with most repeats."""
    repeats = np.array([stats.transitions[:, i, i].sum() for i in range(len(stats.stages))])
    having = [s for s, n in zip(stats.stages, repeats, strict=True) if n > 0]
    if wanted is not None:
        if wanted not in stats.stages or wanted == LOST:
            raise _fit_problem(
                "--repeat-stage", f"stage {wanted!r} is not in the data",
                f"stages: {', '.join(s for s in stats.stages if s != LOST)}", label,
            )  # fmt: skip
        if wanted not in having:
            raise _fit_problem(
                "--repeat-stage", f"stage {wanted!r} has no repeat events in the data",
                "a repeat is a second event in the same stage (a second purchase); "
                + (f"stages with repeats: {', '.join(having)}" if having else "no stage has any"),
                label,
            )  # fmt: skip
        return wanted
    if not having:
        raise _fit_problem(
            "--heterogeneity",
            "no stage has repeat events, so there is no repeat rate to let differ",
            "heterogeneity applies to a stage customers re-enter from itself (a second "
            "purchase); fit without --heterogeneity",
            label,
        )
    return str(stats.stages[int(np.argmax(repeats))])


def _add_repeat_fit(
    idata: Any, stats: Any, rows: list, stage: str, heterogeneity: str, how: dict
) -> None:
    """Fit ``stage`` customer by customer (``heterogeneity`` and the homogeneous model),
    compare them by LOO, and keep both posteriors and the histories in ``idata``."""
    from funnelsim.inference.repeat import (
        RepeatModel,
        compare_loo,
        fit_repeat_stage,
        loo_text,
        repeat_histories,
    )

    ids = np.concatenate([r[0] for r in rows]) if rows else np.zeros(0)
    ns = np.concatenate([r[1] for r in rows]) if rows else np.zeros(0, np.int64)
    names = np.concatenate([r[2] for r in rows]) if rows else np.zeros(0, object)
    h = repeat_histories(ids, ns, names, stage, end_ns=int(pd.Timestamp(stats.end).value))
    post = idata.posterior
    shape = (post.sizes["chain"], post.sizes["draw"])
    models = {}
    divergences = 0
    samplers = []
    stuck = []
    # classes are also compared with gamma rates: both let customers differ
    compared = (heterogeneity, "gamma", "none") if heterogeneity.startswith("classes") else ()
    for kind in dict.fromkeys(compared or (heterogeneity, "none")):
        fitted = fit_repeat_stage(h, kind, **how)
        divergences += int(fitted.attrs.get("diverging", 0))
        samplers.append(str(fitted.attrs.get("sampler", how.get("sampler"))))
        if fitted.attrs.get("dropped_chains"):
            dropped = [int(c) + 1 for c in fitted.attrs["dropped_chains"]]
            stuck.append(
                f"{stage} ({kind}): chain{'s' if len(dropped) > 1 else ''} "
                f"{', '.join(map(str, dropped))} of {shape[0]} settled in a poorer explanation "
                f"of the customers (mean log-likelihood lower by {fitted.attrs['mode_gap']:,.0f}) "
                + ("and are left out" if len(dropped) > 1 else "and is left out")
            )
        for name in fitted.data_vars:
            values = fitted[name].values
            if values.shape[:2] != shape:  # an exact method's draws: align by thinning
                flat = values.reshape(-1, *values.shape[2:])
                pick = np.linspace(0, len(flat) - 1, shape[0] * shape[1]).round().astype(int)
                values = flat[pick].reshape(*shape, *values.shape[2:])
            dims = fitted[name].dims
            coords = {d: fitted[d].values for d in dims if d not in ("chain", "draw")}
            idata.posterior[name] = xr.DataArray(values, dims=dims, coords=coords)
        models[kind] = RepeatModel(fitted, kind, max_draws=1000)
    loo = compare_loo(models, h)
    _put_constant(idata, h.to_dataset())
    idata.attrs["repeat"] = json.dumps(
        {"stage": stage, "heterogeneity": heterogeneity, "loo": loo,
         "divergences": divergences, "customers": len(h), "stuck_chains": stuck,
         "sampler": "/".join(dict.fromkeys(samplers))}
    )  # fmt: skip
    notes = json.loads(idata.attrs.get("notes", "[]"))
    notes.append(f"{stage}: {loo_text(loo)}")
    notes.extend(stuck)
    idata.attrs["notes"] = json.dumps(notes)


def _add_last_events(idata: Any, stats: Any) -> None:
    """Each customer's last event (what a nowcast starts from), in ``constant_data``."""
    last = stats.last
    if last is None:
        return
    ids = last["customer_id"].to_numpy()
    ds = xr.Dataset(
        {
            "last_segment": ("customer", last["segment"].astype(str).to_numpy()),
            "last_stage": ("customer", last["stage"].astype(str).to_numpy()),
            "last_event": ("customer", last["last_event"].to_numpy().astype("datetime64[ns]")),
        },
        coords={"customer": ids.astype(str) if ids.dtype.kind == "O" else ids},
    )
    _put_constant(idata, ds)


def _put_constant(idata: Any, ds: xr.Dataset) -> None:
    """Add ``ds``'s variables to the fit's ``constant_data``."""
    if hasattr(idata, "constant_data"):
        ds = xr.merge([idata.constant_data, ds], combine_attrs="no_conflicts")
        del idata.constant_data
    idata.add_groups(constant_data=ds)


def _fit_counts(
    data: str | Path,
    funnel: Funnel | None,
    spend: str | Path | None,
    priors: str | Path | None,
    columns: str | dict[str, str] | None,
    holdout: int,
    sampling: dict[str, Any],
    say: Callable[[str], None],
    until: pd.Timestamp | None = None,
) -> FittedFunnel:
    from funnelsim.data.counts import load_counts
    from funnelsim.inference.count_fit import fit_counts
    from funnelsim.inference.count_priors import CountPriors, read_count_priors

    if funnel is None:
        raise ScenarioError(
            [
                Problem(
                    ("--funnel",),
                    "fitting counts needs the funnel's structure",
                    "give --funnel FUNNEL.yaml: its stages and edges (its rates are weak "
                    "prior centres)",
                )
            ],
            str(data),
        )
    spec = read_count_priors(priors) if priors is not None else CountPriors()
    counts = load_counts(
        data,
        spend,
        stages=[s for s in funnel.stages if s != LOST],
        columns=columns,
        latent=tuple(spec.latent),
        campaigns=list(spec.campaigns) or None,
    )
    if until is not None:  # a backtest's cutoff: the periods that start there are held out
        holdout = int((counts.dates >= until).sum())
        if counts.n_periods - holdout < 8 or holdout < 1:
            first, last = counts.dates[8] if counts.n_periods > 8 else None, counts.dates[-1]
            raise ScenarioError(
                [
                    Problem(
                        ("--cutoff",),
                        f"the cutoff {until:%Y-%m-%d} leaves {counts.n_periods - holdout} "
                        f"periods to fit and {holdout} to compare",
                        "a backtest of counts needs 8 periods before the cutoff and one after"
                        + (
                            f": choose a cutoff from {first:%Y-%m-%d} to {last:%Y-%m-%d}"
                            if first is not None and first <= last
                            else ""
                        ),
                    )
                ],
                str(data),
            )
    if holdout and holdout > counts.n_periods - 8:
        raise ScenarioError(
            [
                Problem(
                    ("--holdout",),
                    f"--holdout {holdout} leaves {counts.n_periods - holdout} of "
                    f"{counts.n_periods} periods to fit",
                    "hold out at most all but 8 periods (e.g. --holdout 8 on two years of weeks)",
                )
            ],
            str(data),
        )
    say(
        f"fitting {counts.n_periods - holdout} periods of {len(counts.series)} counts and "
        f"{len(counts.campaigns)} campaigns with NUTS …"
    )
    t0 = time.perf_counter()
    fit = fit_counts(
        counts, funnel, spec, holdout=holdout, priors_file=str(priors or ""), **sampling
    )
    fit.idata.attrs["fit_seconds"] = round(time.perf_counter() - t0, 3)
    fit.idata.attrs["method"] = "nuts"
    fit.data["file"] = Path(data).name
    return fit


def _fitting_line(
    customers: int, method: str, sampler: str, campaigns: bool, what: str = "journeys"
) -> str:
    how = "NUTS" if method == "nuts" or campaigns else "the best method for the data"
    return f"fitting the {what} of {customers:,} customers with {how} …"


def _order_of(frame: pd.DataFrame) -> list[str]:
    """Stages ordered by the median rank at which customers are seen in them."""
    rank = frame.groupby("customer_id").cumcount()
    order = rank.groupby(frame["stage"]).median().sort_values(kind="stable")
    return [s for s in order.index if s != LOST]


def _entry(summary: dict, stages: Sequence[str]) -> str:
    first: dict[str, int] = summary.get("first_stage") or {}
    return max(first, key=lambda s: first[s]) if first else stages[0]


def _journey_summary(stats: Any) -> dict[str, Any]:
    first = stats.first_stage.sum(axis=0)
    arrivals = stats.arrivals.sum(axis=(0, 2))
    days = float(stats.durations.sum())
    return {
        "customers": int(stats.n_customers),
        "events": int(stats.n_events),
        "start": str(stats.start),
        "end": str(stats.end),
        "days": days,
        "segments": list(stats.segments),
        "channels": list(stats.channels),
        "first_stage": {s: int(n) for s, n in zip(stats.stages, first) if n},
        "arrivals_per_day": {c: float(n) / days for c, n in zip(stats.channels, arrivals)},
        "unmapped": dict(stats.unmapped),
        "explicit_exits": bool(stats.explicit_exits),
    }


def starter_scenario(fit: FittedFunnel, fit_path: Path, scenario_path: Path) -> str:
    """A scenario that forecasts from ``fit``: the next 90 days after the data, arrivals
    at the rates seen in the data; economics and campaigns left for the planner."""
    import os

    rel = os.path.relpath(fit_path.resolve(), scenario_path.resolve().parent)
    data = fit.data
    end = pd.Timestamp(data.get("end", pd.Timestamp.today())).normalize() + pd.Timedelta(days=1)
    arrivals = {k: v for k, v in (data.get("arrivals_per_day") or {}).items() if v > 0}
    named = [k for k in arrivals if k != "*"]  # "*": a count fit's arrivals, no channels
    per_day = float(sum(arrivals.values()))
    spec: dict[str, Any] = {
        "name": f"forecast from {fit_path.name}",
        "description": (
            f"Forecast from the fit {fit_path.name} ({fit.kind} of "
            + (
                f"{data.get('customers', 0):,} customers"
                if fit.kind != "counts"
                else f"{data.get('periods', 0)} periods"
            )
            + f", {str(data.get('start', ''))[:10]} to "
            f"{str(data.get('end', ''))[:10]}): replicate r uses posterior draw r."
        ),
        "horizon": {"start": end.date().isoformat(), "periods": 90, "step": "day"},
        "fit": rel,
    }
    if per_day > 0:
        spec["arrivals"] = {"per_day": round(per_day, 4), "stage": fit.entry}
        if named:
            spec["arrivals"]["channels"] = {k: round(v / per_day, 4) for k, v in arrivals.items()}
    else:
        spec["population"] = {"initial": {fit.entry: 1000}}
    if fit.kind == "counts":  # the fitted funnel at the data's end: who is where now
        from funnelsim.inference.count_fit import occupancy_now

        spec["population"] = {
            "initial": {k: round(v) for k, v in occupancy_now(fit).items() if v >= 0.5}
        }
    segments = [s for s in fit.segments if s != "all"]
    if segments:
        spec["segments"] = {s: {"share": round(1.0 / len(segments), 4)} for s in segments}
    spec["economics"] = {"value_per_conversion": 0.0}
    spec["replicates"] = int(min(500, fit.n_draws))
    spec["seed"] = int(np.random.SeedSequence().generate_state(1, np.uint32)[0])
    head = (
        "# Starter scenario written by `funnelsim fit`. Arrivals are the rates seen in the\n"
        "# data; set economics.value_per_conversion and add campaigns (baseline/variants),\n"
        "# then: funnelsim run "
        + scenario_path.name
        + "\n"
        + (
            "# population.initial: the people in each stage at the data's end, as the fit\n"
            "# estimates them (posterior mean).\n"
            if fit.kind == "counts"
            else "# People still in the journey when the data end are not in it (add them under\n"
            "# population.initial if you know where they stand).\n"
        )
    )
    return head + yaml.safe_dump(spec, sort_keys=False, allow_unicode=True)


def write_fit(
    fit: FittedFunnel, path: str | Path, *, scenario_out: str | Path | None = None
) -> list[Path]:
    """Write ``FIT.nc``, ``FIT.rates.csv``, ``FIT.effects.csv`` (with campaigns),
    ``FIT.report.html`` and ``scenario_out`` — all or nothing; a file funnelsim did not
    write is never replaced. Returns the paths written."""
    from funnelsim.io import write_files
    from funnelsim.report.fit_report import fit_report_html

    path = Path(path)
    nc, rates_csv, effects_csv, report, contrib_csv, holdout_csv = fit_paths(path)
    fit.stamp()
    rates = fit.rates()
    effects = fit.effects()
    writers: dict[Path, Callable[[Path], object]] = {
        nc: lambda tmp: fit.idata.to_netcdf(str(tmp)),
        rates_csv: lambda tmp: rates.to_csv(tmp, index=False, float_format="%.6g"),
    }
    if len(effects):
        writers[effects_csv] = lambda tmp: effects.to_csv(tmp, index=False, float_format="%.6g")
    if fit.kind == "counts":
        from funnelsim.inference.count_fit import contributions, holdout_check

        contrib = contributions(fit)
        writers[contrib_csv] = lambda tmp: contrib.to_csv(tmp, index=False, float_format="%.6g")
        checked = holdout_check(fit)
        if len(checked):
            writers[holdout_csv] = lambda tmp: checked.to_csv(tmp, index=False, float_format="%.6g")
    writers[report] = lambda tmp: tmp.write_text(
        fit_report_html(fit, title=path.name), encoding="utf-8"
    )
    if scenario_out is not None:
        text = starter_scenario(fit, path, Path(scenario_out))
        writers[Path(scenario_out)] = lambda tmp: tmp.write_text(text, encoding="utf-8")
    return write_files(writers, by="fit")


def fit_paths(path: str | Path) -> tuple[Path, Path, Path, Path, Path, Path]:
    """The files :func:`write_fit` may write for ``FIT.nc``: the fit, its rates and
    effects tables, its report, and for count fits the contributions and holdout tables
    (check them all before a long fit).

    >>> [p.name for p in fit_paths("fits/shop.nc")][:4]
    ['shop.nc', 'shop.rates.csv', 'shop.effects.csv', 'shop.report.html']
    >>> [p.name for p in fit_paths("fits/shop.nc")][4:]
    ['shop.contributions.csv', 'shop.holdout.csv']
    """
    path = Path(path)
    stem = path.with_suffix("")
    return (
        path,
        Path(f"{stem}.rates.csv"),
        Path(f"{stem}.effects.csv"),
        Path(f"{stem}.report.html"),
        Path(f"{stem}.contributions.csv"),
        Path(f"{stem}.holdout.csv"),
    )
