"""The scenario file schema (pydantic, ``extra="forbid"``).

Per-object rules live here (positive dwell, routing that sums to 1, channel shares);
rules that relate parts of the file to each other (unknown stage names, reachability of
the goal) are in :mod:`funnelsim.scenario.checks`, so that one run reports both kinds.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

__all__ = [
    "StageSpec",
    "FunnelSpec",
    "Horizon",
    "Population",
    "Arrivals",
    "Outputs",
    "Scenario",
    "json_schema",
    "STEP_DAYS",
]

#: reporting step → days
STEP_DAYS = {"day": 1.0, "week": 7.0}
_SUM_TOL = 1e-6

Probability = Annotated[float, Field(ge=0.0, le=1.0)]
NonNegative = Annotated[float, Field(ge=0.0, allow_inf_nan=False)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StageSpec(_Strict):
    """One stage: either mean dwell + routing, or hazard rates per day."""

    dwell_days: Annotated[float, Field(gt=0.0, allow_inf_nan=False)] | None = Field(
        None, description="Mean time in the stage before the next event, in days.")
    next: dict[str, Probability] | None = Field(
        None, description="Where people go when they leave: target stage → probability (sums to 1).")
    rates: dict[str, NonNegative] | None = Field(
        None, description="Alternative to dwell_days + next: target stage → hazard rate per day.")
    description: str = ""

    @model_validator(mode="after")
    def _one_form(self) -> StageSpec:
        routing = self.dwell_days is not None or self.next is not None
        if routing and self.rates is not None:
            raise ValueError("give either `dwell_days` + `next` or `rates`, not both")
        if not routing and self.rates is None:
            raise ValueError("give `dwell_days` and `next` (or `rates`; `rates: {}` for a stage "
                             "nobody leaves)")
        if routing and (self.dwell_days is None or self.next is None):
            missing = "next" if self.next is None else "dwell_days"
            raise ValueError(f"`{missing}` is missing: `dwell_days` and `next` go together")
        if self.next is not None:
            total = sum(self.next.values())
            if abs(total - 1.0) > _SUM_TOL:
                raise ValueError(f"routing probabilities in `next` sum to {total:g}, not 1")
        return self

    def rate_table(self) -> dict[str, float]:
        """Hazard rates per day to each target."""
        if self.rates is not None:
            return dict(self.rates)
        assert self.dwell_days is not None and self.next is not None
        return {k: v / self.dwell_days for k, v in self.next.items()}


class FunnelSpec(_Strict):
    """A journey: its stages in order, the goal stage, the entry stage."""

    name: str = ""
    description: str = ""
    goal: str = Field(description="Stage whose entries count as conversions.")
    entry: str | None = Field(None, description="Stage new arrivals enter (default: the first).")
    stages: dict[str, StageSpec] = Field(min_length=1)


class Horizon(_Strict):
    """When the forecast starts, how many periods it runs and how long a period is."""

    start: dt.date
    periods: Annotated[int, Field(gt=0, le=100_000)]
    step: Literal["day", "week"] = "day"
    dt_days: Annotated[float, Field(gt=0.0, le=1.0)] | None = Field(
        None, description="Simulation clock step in days (default: chosen from the fastest "
                          "stage, at most one day).")

    @property
    def step_days(self) -> float:
        return STEP_DAYS[self.step]


class Population(_Strict):
    """Who is already in the funnel at the start."""

    initial: dict[str, Annotated[int, Field(ge=0)]] = Field(default_factory=dict)


class Arrivals(_Strict):
    """New people entering the funnel: a Poisson stream split by channel."""

    per_day: NonNegative
    stage: str | None = Field(None, description="Stage arrivals enter (default: funnel entry).")
    channels: dict[str, NonNegative] | None = Field(
        None, description="Share of arrivals by channel (sums to 1).")

    @model_validator(mode="after")
    def _shares(self) -> Arrivals:
        if self.channels is not None:
            total = sum(self.channels.values())
            if not self.channels:
                raise ValueError("`channels` is empty: name at least one channel or drop the key")
            if abs(total - 1.0) > _SUM_TOL:
                raise ValueError(f"channel shares sum to {total:g}, not 1")
        return self


class Outputs(_Strict):
    """Where and what to write."""

    dir: str | None = Field(None, description="Output folder (default: out/<scenario stem>).")
    plots: bool = True


class Scenario(_Strict):
    """A forecast: a journey, a horizon, who is in it, who arrives, how many replicates."""

    name: str = "scenario"
    description: str = ""
    horizon: Horizon
    funnel: FunnelSpec = Field(description="Inline funnel, a preset name, or a funnel YAML path.")
    population: Population = Field(default_factory=Population)
    arrivals: Arrivals | None = None
    replicates: Annotated[int, Field(gt=0, le=1_000_000)] = 500
    seed: Annotated[int, Field(ge=0)] | None = Field(
        None, description="Random seed; omitted → a fresh one, recorded in scenario.resolved.yaml.")
    engine: Literal["counts", "expected"] = "counts"
    outputs: Outputs = Field(default_factory=Outputs)

    _source: Path | None = PrivateAttr(None)


def json_schema() -> dict:
    """JSON Schema of scenario files (``funnel`` may also be a preset name or a path)."""
    schema = Scenario.model_json_schema()
    funnel = schema["properties"]["funnel"]
    ref = {k: funnel.pop(k) for k in list(funnel) if k in ("$ref", "allOf")}
    funnel["anyOf"] = [ref if "$ref" in ref else ref.get("allOf", [{}])[0],
                       {"type": "string", "description": "preset name or path to a funnel YAML"}]
    schema["title"] = "funnelsim scenario"
    return schema
