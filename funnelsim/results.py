"""Simulation results: an xarray Dataset with named dimensions, plus summaries.

Variables of :attr:`SimulationResult.dataset`:

``initial(scenario, replicate, stage)``
    people in each stage at the start;
``occupancy(scenario, replicate, period, stage)``
    people in each stage at the end of each period (``lost`` included);
``flows(scenario, replicate, period, source, target)``
    moves along each edge during each period (``source == target``: repeat events);
``arrivals(scenario, replicate, period, channel)``
    new people by channel (coordinate ``channel_stage`` says where they enter).

Conversions are entries into the funnel's goal stage (flows into it, repeats included).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from funnelsim.dynamics import CompiledModel
from funnelsim.engines.base import RawRun

__all__ = ["SimulationResult", "QUANTILES"]

QUANTILES = (0.05, 0.5, 0.95)


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

    # ----------------------------------------------------------------- building
    @classmethod
    def from_runs(
        cls,
        runs: Mapping[str, RawRun],
        model: CompiledModel,
        attrs: Mapping[str, object] | None = None,
    ) -> SimulationResult:
        """Stack raw engine runs (one per scenario name) into a labelled result."""
        stages = list(model.stages)
        names = list(runs)
        n_rep = next(iter(runs.values())).occupancy.shape[0]
        coords = {
            "scenario": names,
            "replicate": np.arange(n_rep),
            "period": model.dates.values,
            "stage": stages,
            "source": stages,
            "target": stages,
            "channel": list(model.channels),
            "channel_stage": ("channel", [stages[model.stage_of[c]] for c in model.arrival_comp]),
        }

        def stack(field: str) -> np.ndarray:
            return np.stack([getattr(runs[n], field) for n in names])

        ds = xr.Dataset(
            {
                "initial": (("scenario", "replicate", "stage"), stack("initial")),
                "occupancy": (("scenario", "replicate", "period", "stage"), stack("occupancy")),
                "flows": (
                    ("scenario", "replicate", "period", "source", "target"),
                    stack("flows"),
                ),
                "arrivals": (("scenario", "replicate", "period", "channel"), stack("arrivals")),
            },
            coords=coords,
            attrs={
                "goal": model.funnel.goal,
                "entry": model.funnel.entry,
                "dt_days": model.dt,
                **(attrs or {}),
            },
        )
        return cls(ds)

    # ----------------------------------------------------------------- accessors
    @property
    def goal(self) -> str:
        return str(self.dataset.attrs["goal"])

    @property
    def scenarios(self) -> list[str]:
        return [str(s) for s in self.dataset["scenario"].values]

    @property
    def stages(self) -> list[str]:
        return [str(s) for s in self.dataset["stage"].values]

    def entries(self) -> xr.DataArray:
        """Entries into each stage per period: moves in (repeats included) plus arrivals."""
        ds = self.dataset
        moved_in = ds["flows"].sum("source").rename(target="stage")
        by_stage = ds["arrivals"].groupby("channel_stage").sum("channel")
        by_stage = by_stage.rename(channel_stage="stage").reindex(stage=ds["stage"], fill_value=0)
        return (moved_in + by_stage).transpose("scenario", "replicate", "period", "stage")

    def conversions(self, cumulative: bool = False) -> xr.DataArray:
        """Entries into the goal stage: totals ``(scenario, replicate)``, or per period
        (running totals if ``cumulative``)."""
        per_period = self.dataset["flows"].sel(target=self.goal, drop=True).sum("source")
        return per_period.cumsum("period") if cumulative else per_period.sum("period")

    def totals(self) -> xr.Dataset:
        """Headline metrics over the horizon, one value per scenario and replicate."""
        ds = self.dataset
        conversions = self.conversions()
        arrivals = ds["arrivals"].sum(("period", "channel"))
        people = ds["initial"].sum("stage") + arrivals
        into_lost = ds["flows"].sel(target="lost", drop=True)
        lost = into_lost.sum(("period", "source")) - into_lost.sel(source="lost", drop=True).sum("period")
        return xr.Dataset(
            {
                "conversions": conversions,
                "arrivals": arrivals,
                "conversion_rate": conversions / people.where(people > 0),
                "lost": lost,
            }
        )

    # ----------------------------------------------------------------- tables
    def summary(self, quantiles: Sequence[float] = QUANTILES) -> pd.DataFrame:
        """Long table ``scenario, metric, mean, p05, p50, p95`` of :meth:`totals`."""
        rows = []
        totals = self.totals()
        for name in totals.data_vars:
            da = totals[name]
            q = da.quantile(list(quantiles), dim="replicate")
            mean = da.mean("replicate")
            for scenario in self.scenarios:
                row = {"scenario": scenario, "metric": str(name),
                       "mean": float(mean.sel(scenario=scenario))}
                for qq in quantiles:
                    row[_qname(qq)] = float(q.sel(quantile=qq, scenario=scenario))
                rows.append(row)
        order = {s: i for i, s in enumerate(self.scenarios)}
        df = pd.DataFrame(rows)
        return df.sort_values(["scenario", "metric"], key=lambda c: c.map(order) if c.name ==
                              "scenario" else c, kind="stable").reset_index(drop=True)

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
        cols = ["scenario", "period", "stage"] + [c for c in table.columns
                                                  if c.startswith(("occupancy_", "entries_"))]
        return table[cols]

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


def _qname(q: float) -> str:
    """``0.05`` → ``p05``; ``0.5`` → ``p50``."""
    return f"p{round(q * 100):02d}"
