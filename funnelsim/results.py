"""Simulation results: an xarray Dataset with named dimensions, plus summaries.

Variables of :attr:`SimulationResult.dataset`:

``initial(scenario, replicate, stage)``
    people in each stage at the start;
``occupancy(scenario, replicate, period, stage)``
    people in each stage at the end of each period (``lost`` included);
``flows(scenario, replicate, period, source, target)``
    moves along each edge during each period (``source == target``: repeat events);
``arrivals(scenario, replicate, period, segment, channel)``
    new people by persona and by the channel that brought them;
``entries(scenario, replicate, period, stage, segment, channel)``
    entries into each stage (moves in, repeats and arrivals) by persona and channel;
``spend(scenario, period)``, ``pressure(scenario, campaign, period)``
    money spent on campaigns, and each campaign's mean pressure in [0, 1];
``pressure_daily(scenario, campaign, day)``, ``spend_daily(scenario, day)``
    each campaign's pressure, and the money spent, day by day (so a window is seen to
    start on its day);
``value(stage)``
    money per entry into each stage (the goal's is the value per conversion).

Conversions are entries into the funnel's goal stage (repeats included). Scenarios of
one result share replicate random streams, so per-replicate differences between a
variant and the baseline are paired (common random numbers).
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar, cast

import numpy as np
import pandas as pd
import xarray as xr

from funnelsim.dynamics import CompiledModel
from funnelsim.engines.base import RawRun
from funnelsim.funnel import LOST

__all__ = ["SimulationResult", "QUANTILES", "scenario_dataset"]

QUANTILES = (0.05, 0.5, 0.95)
BASELINE = "baseline"


def scenario_dataset(
    raw: RawRun, model: CompiledModel, value: Mapping[str, float] | None = None
) -> xr.Dataset:
    """Label one scenario's raw engine arrays (dims as in the module docstring)."""
    stages = list(model.stages)
    g, h = len(model.segments), len(model.channels)
    r, t = raw.occupancy.shape[:2]
    days_per_period = model.steps_per_period * model.dt
    n_days = len(next(iter(model.costs.values()))) if model.costs else 0
    period_of_day = np.minimum((np.arange(n_days) / days_per_period).astype(int), t - 1)
    spend = np.zeros(t)
    for cost in model.costs.values():
        np.add.at(spend, period_of_day, cost)
    names = list(model.pressure)
    pressure = np.zeros((len(names), t))
    for k, name in enumerate(names):
        sums = np.bincount(period_of_day, weights=model.pressure[name], minlength=t)
        pressure[k] = sums / np.maximum(np.bincount(period_of_day, minlength=t), 1)
    n_horizon = round(t * days_per_period)
    days = pd.date_range(model.dates[0], periods=n_horizon, freq="D")
    daily = np.zeros((len(names), n_horizon))
    spend_daily = np.zeros(n_horizon)
    for k, name in enumerate(names):
        daily[k] = model.pressure[name][:n_horizon]
        spend_daily += model.costs[name][:n_horizon]
    values = np.array([float((value or {}).get(s, 0.0)) for s in stages])
    queue_vars = {}
    if raw.queues is not None:
        from funnelsim.engines.agents import QUEUE_METRICS

        for k, metric in enumerate(QUEUE_METRICS):
            queue_vars[f"queue_{metric}"] = (("replicate", "queue"), raw.queues[:, :, k])
    ds = xr.Dataset(
        {
            "initial": (("replicate", "stage"), raw.initial),
            "occupancy": (("replicate", "period", "stage"), raw.occupancy),
            "flows": (("replicate", "period", "source", "target"), raw.flows),
            "arrivals": (
                ("replicate", "period", "segment", "channel"),
                raw.arrivals.reshape(r, t, g, h),
            ),
            "entries": (
                ("replicate", "period", "stage", "segment", "channel"),
                raw.entries.reshape(r, t, len(stages), g, h),
            ),
            "spend": (("period",), spend),
            "pressure": (("campaign", "period"), pressure),
            "pressure_daily": (("campaign", "day"), daily),
            "spend_daily": (("day",), spend_daily),
            "value": (("stage",), values),
        },
        coords={
            "replicate": np.arange(r),
            "period": model.dates.values,
            "stage": stages,
            "source": stages,
            "target": stages,
            "segment": list(model.segments),
            "channel": list(model.channels),
            "campaign": names,
            "day": days,
        },
    )
    if queue_vars:
        ds = ds.assign(queue_vars).assign_coords(queue=[stages[i] for i in sorted(model.capacity)])
    return ds


_Table = TypeVar("_Table", bound=Callable[..., Any])


def _tables_once(method: _Table) -> _Table:
    """Compute a table of a result once per arguments (outputs, report and console all
    ask for the same tables); each caller gets its own copy."""

    @functools.wraps(method)
    def wrapper(self: SimulationResult, *args: object, **kwargs: object) -> pd.DataFrame | None:
        # keyed by the dataset too: a result whose dataset is replaced recomputes
        key = (id(self.dataset), method.__name__, repr(args), repr(sorted(kwargs.items())))
        if key not in self._tables:
            self._tables[key] = method(self, *args, **kwargs)
        table = self._tables[key]
        return None if table is None else table.copy()

    return cast(_Table, wrapper)


class SimulationResult:
    """Engine output for one or more scenarios, with helpers for the usual questions.

    Examples
    --------
    >>> from funnelsim.scenario import load_scenario, run
    >>> result = run(load_scenario("scenarios/bike_shop.yaml"), replicates=20)  # doctest: +SKIP
    >>> result.conversions().mean("replicate")  # doctest: +SKIP
    """

    def __init__(self, dataset: xr.Dataset) -> None:
        self.dataset = dataset
        self._tables: dict[tuple[int, str, str, str], pd.DataFrame | None] = {}
        #: event logs by scenario (agent engine with ``record_journeys``)
        self.journeys: dict[str, pd.DataFrame] = {}

    # ----------------------------------------------------------------- building
    @classmethod
    def from_runs(
        cls,
        runs: Mapping[str, RawRun],
        models: Mapping[str, CompiledModel],
        attrs: Mapping[str, object] | None = None,
        values: Mapping[str, Mapping[str, float]] | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> SimulationResult:
        """Stack raw engine runs (one per scenario name, the baseline first) into a
        labelled result. ``models``, ``values`` (money per stage entry) and ``labels``
        are keyed by scenario name too."""
        parts = [
            scenario_dataset(raw, models[name], (values or {}).get(name))
            for name, raw in runs.items()
        ]
        ds = xr.concat(
            parts,
            dim=pd.Index(list(runs), name="scenario"),
            join="outer",
            fill_value=0,
            data_vars="all",
            coords="minimal",
            compat="override",
        )
        ds.coords["label"] = ("scenario", [(labels or {}).get(n, n) for n in runs])
        first = models[next(iter(runs))]
        ds.attrs = {
            "goal": first.funnel.goal,
            "entry": first.funnel.entry,
            "dt_days": first.dt,
            **(attrs or {}),
        }
        return cls(ds)

    # ----------------------------------------------------------------- accessors
    @property
    def goal(self) -> str:
        return str(self.dataset.attrs["goal"])

    @property
    def scenarios(self) -> list[str]:
        return [str(s) for s in self.dataset["scenario"].values]

    @property
    def variants(self) -> list[str]:
        """Scenarios other than the first (the baseline)."""
        return self.scenarios[1:]

    @property
    def stages(self) -> list[str]:
        return [str(s) for s in self.dataset["stage"].values]

    def entries(self) -> xr.DataArray:
        """Entries into each stage per period ``(scenario, replicate, period, stage)``."""
        return self.dataset["entries"].sum(("segment", "channel"))

    def conversions(self, cumulative: bool = False, by: str | Sequence[str] = ()) -> xr.DataArray:
        """Entries into the goal stage: totals ``(scenario, replicate[, by...])``, or per
        period (running totals) if ``cumulative``. ``by``: ``"segment"`` and/or ``"channel"``."""
        keep = [by] if isinstance(by, str) else list(by)
        da = self.dataset["entries"].sel(stage=self.goal, drop=True)
        da = da.sum([d for d in ("segment", "channel") if d not in keep])
        return da.cumsum("period") if cumulative else da.sum("period")

    def revenue(self, by: str | Sequence[str] = ()) -> xr.DataArray:
        """Money from stage entries (value per entry × entries) over the horizon."""
        keep = [by] if isinstance(by, str) else list(by)
        da = (self.dataset["entries"] * self.dataset["value"]).sum(("period", "stage"))
        return da.sum([d for d in ("segment", "channel") if d not in keep])

    def before_goal(self) -> list[str]:
        """Stages listed before the goal in journey order: people there have not converted
        (yet, or since they came back from ``lost``)."""
        stages = [s for s in self.stages if s != LOST]
        return stages[: stages.index(self.goal)]

    def dropoff(self) -> xr.DataArray:
        """Moves into ``lost`` per source stage over the horizon ``(scenario, replicate,
        source)`` (``lost`` itself excluded)."""
        into_lost = self.dataset["flows"].sel(target=LOST, drop=True).sum("period")
        return into_lost.sel(source=[s for s in self.stages if s != LOST])

    def totals(self) -> xr.Dataset:
        """Headline metrics over the horizon, one value per scenario and replicate.

        Moves into ``lost`` are split by where they come from, in journey order:
        ``lost`` counts moves from the stages listed *before* the goal (people who left
        without converting); ``churned`` counts moves from the goal and the stages
        listed after it (customers leaving). A person won back from ``lost`` who leaves
        again is counted again.
        """
        ds = self.dataset
        conversions = self.conversions()
        arrivals = ds["arrivals"].sum(("period", "segment", "channel"))
        people = ds["initial"].sum("stage") + arrivals
        dropoff = self.dropoff()
        before = self.before_goal()
        lost = dropoff.sel(source=before).sum("source")
        churned = dropoff.drop_sel(source=before).sum("source")
        revenue = self.revenue()
        spend = ds["spend"].sum("period").broadcast_like(revenue)
        profit = revenue - spend
        return xr.Dataset(
            {
                "conversions": conversions,
                "arrivals": arrivals,
                "conversion_rate": conversions / people.where(people > 0),
                "lost": lost,
                "churned": churned,
                "revenue": revenue,
                "spend": spend,
                "profit": profit,
                "cac": spend / conversions.where(conversions > 0),
                "roi": profit / spend.where(spend > 0),
            }
        )

    def uplift(self) -> xr.Dataset:
        """Per replicate, each variant minus the baseline (paired by common random numbers)."""
        totals = self.totals()[["conversions", "revenue", "spend", "profit"]]
        base = totals.isel(scenario=0, drop=True)
        diff = totals.isel(scenario=slice(1, None)) - base
        return diff.rename({k: f"uplift_{k}" for k in diff.data_vars})

    def prob_best(self, metric: str = "profit") -> xr.DataArray:
        """Share of replicates in which each scenario has the highest ``metric`` (ties
        shared), i.e. how sure we are that it is the best plan."""
        values = self.totals()[metric]
        top = values.max("scenario")
        winners = (values == top).astype(float)
        return (winners / winners.sum("scenario")).mean("replicate")

    @_tables_once
    def comparison(self) -> pd.DataFrame:
        """One row per scenario with the numbers a planner compares at a glance."""
        totals = self.totals()
        rows = []
        conv = self.conversions()
        best = self.prob_best("profit") if self.variants else None
        up = self.uplift() if self.variants else None
        labels = self.dataset["label"].values if "label" in self.dataset.coords else self.scenarios
        for k, name in enumerate(self.scenarios):
            row: dict[str, object] = {"scenario": name, "label": str(labels[k])}
            for metric in ("conversions", "revenue", "spend", "profit"):
                da = totals[metric].sel(scenario=name)
                row[metric] = float(da.mean())
                row[f"{metric}_p05"], row[f"{metric}_p95"] = (
                    float(v) for v in da.quantile([0.05, 0.95]).values
                )
            if up is not None and k > 0:
                for metric in ("uplift_conversions", "uplift_profit"):
                    da = up[metric].sel(scenario=name)
                    row[metric] = float(da.mean())
                    row[f"{metric}_p05"], row[f"{metric}_p95"] = (
                        float(v) for v in da.quantile([0.05, 0.95]).values
                    )
                row["prob_beats_baseline"] = float(
                    (conv.sel(scenario=name) > conv.isel(scenario=0)).mean()
                )
            if best is not None:
                row["prob_best_profit"] = float(best.sel(scenario=name))
            rows.append(row)
        return pd.DataFrame(rows)

    # ----------------------------------------------------------------- tables
    @_tables_once
    def summary(self, quantiles: Sequence[float] = QUANTILES) -> pd.DataFrame:
        """Long table ``scenario, metric, mean, p05, p50, p95``: :meth:`totals` for every
        scenario; for variants also uplift vs the baseline (conversions, revenue, profit),
        ``incremental_roi``, ``prob_beats_baseline`` (share of replicates where the
        variant's conversions exceed the baseline's) and, for every scenario,
        ``prob_best_profit`` (share of replicates where it is the most profitable plan);
        probabilities have no interval."""
        frames = [_long(self.totals(), quantiles)]
        if self.variants:
            up = self.uplift()
            inc_roi = up["uplift_profit"] / up["uplift_spend"].where(up["uplift_spend"] > 0)
            up = up.drop_vars("uplift_spend").assign(incremental_roi=inc_roi)
            frames.append(_long(up, quantiles))
            conv = self.conversions()
            beats = conv.isel(scenario=slice(1, None)) > conv.isel(scenario=0, drop=True)
            prob = beats.mean("replicate")
            frames.append(
                pd.DataFrame(
                    {
                        "scenario": [str(s) for s in prob["scenario"].values],
                        "metric": "prob_beats_baseline",
                        "mean": prob.values.astype(float),
                    }
                )
            )
            best = self.prob_best("profit")
            frames.append(
                pd.DataFrame(
                    {
                        "scenario": self.scenarios,
                        "metric": "prob_best_profit",
                        "mean": best.values.astype(float),
                    }
                )
            )
        table = pd.concat(frames, ignore_index=True)
        return self._in_scenario_order(table)[
            ["scenario", "metric", "mean"] + [_qname(q) for q in quantiles]
        ]

    @_tables_once
    def summary_by(self, dim: str, quantiles: Sequence[float] = QUANTILES) -> pd.DataFrame:
        """Long table ``scenario, <dim>, metric, mean, p05, p50, p95`` split by
        ``"channel"`` or ``"segment"``: arrivals, conversions, revenue and each one's
        share of the scenario's conversions."""
        conv = self.conversions(by=dim)
        total = conv.sum(dim)
        parts = xr.Dataset(
            {
                "arrivals": self.dataset["arrivals"].sum(
                    [d for d in ("period", "segment", "channel") if d != dim]
                ),
                "conversions": conv,
                "share_of_conversions": conv / total.where(total > 0),
                "revenue": self.revenue(by=dim),
            }
        )
        table = _long(parts, quantiles, extra=[dim])
        return self._in_scenario_order(table)

    @_tables_once
    def summary_queues(self, quantiles: Sequence[float] = QUANTILES) -> pd.DataFrame | None:
        """Long table ``scenario, queue, metric, mean, p05, p50, p95`` of the capacity
        stages (agent engine): people served and lost to waiting, waiting days (mean,
        median, 90th percentile within each replicate) and server utilisation. None
        without queues."""
        names = [v for v in self.dataset.data_vars if str(v).startswith("queue_")]
        if not names:
            return None
        parts = self.dataset[names].rename({v: str(v).removeprefix("queue_") for v in names})
        return _long(parts, quantiles, extra=["queue"])

    @_tables_once
    def timeseries(self, quantiles: Sequence[float] = QUANTILES) -> pd.DataFrame:
        """Per scenario, period and stage: occupancy and entries (mean and quantiles)."""
        parts = {"occupancy": self.dataset["occupancy"], "entries": self.entries()}
        frames = []
        for name, da in parts.items():
            stats = {f"{name}_mean": da.mean("replicate")}
            q = da.quantile(list(quantiles), dim="replicate")
            for qq in quantiles:
                stats[f"{name}_{_qname(qq)}"] = q.sel(quantile=qq, drop=True)
            frames.append(xr.Dataset(stats))
        table = xr.merge(frames).to_dataframe().reset_index()
        table["period"] = pd.to_datetime(table["period"]).dt.strftime("%Y-%m-%d")
        cols = ["scenario", "period", "stage"] + [
            c for c in table.columns if c.startswith(("occupancy_", "entries_"))
        ]
        return self._in_scenario_order(table)[cols]

    def _in_scenario_order(self, table: pd.DataFrame) -> pd.DataFrame:
        """Rows sorted by scenario as in the result (baseline first), stable otherwise."""
        order = {s: i for i, s in enumerate(self.scenarios)}
        table = table.sort_values("scenario", key=lambda c: c.map(order), kind="stable")
        return table.reset_index(drop=True)

    # ----------------------------------------------------------------- files
    def to_netcdf(self, path: str | Path) -> None:
        """Write the dataset (compressed NetCDF4)."""
        encoding = {v: {"zlib": True, "complevel": 4} for v in self.dataset.data_vars}
        self.dataset.to_netcdf(path, engine="netcdf4", encoding=encoding)

    @classmethod
    def from_netcdf(cls, path: str | Path) -> SimulationResult:
        """Read a dataset written by :meth:`to_netcdf`."""
        with xr.open_dataset(path, engine="netcdf4") as ds:
            return cls(ds.load())


def _long(ds: xr.Dataset, quantiles: Sequence[float], extra: Sequence[str] = ()) -> pd.DataFrame:
    """Mean and quantiles over replicates of each variable, as a long table."""
    with warnings.catch_warnings():  # a metric undefined in every replicate (ROI of no spend)
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = ds.mean("replicate")
        q = ds.quantile(list(quantiles), dim="replicate")
    keys = ["scenario", *extra]
    frames = []
    for name in ds.data_vars:
        table = mean[name].transpose(*keys).to_dataframe(name="mean").reset_index()[keys + ["mean"]]
        for qq in quantiles:
            table[_qname(qq)] = q[name].sel(quantile=qq, drop=True).transpose(*keys).values.ravel()
        table.insert(len(keys), "metric", str(name))
        frames.append(table)
    return pd.concat(frames, ignore_index=True)


def _qname(q: float) -> str:
    """``0.05`` → ``p05``; ``0.5`` → ``p50``."""
    return f"p{round(q * 100):02d}"
