"""The scenario file schema (pydantic, ``extra="forbid"``).

Per-object rules live here (positive dwell, routing that sums to 1, channel shares);
rules that relate parts of the file to each other (unknown stage names, reachability of
the goal) are in :mod:`funnelsim.scenario.checks`, so that one run reports both kinds.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

__all__ = [
    "DwellSpec",
    "CapacitySpec",
    "StageSpec",
    "FunnelSpec",
    "Horizon",
    "Population",
    "Arrivals",
    "Outputs",
    "SpendSpec",
    "EffectSpec",
    "CampaignSpec",
    "SegmentSpec",
    "Economics",
    "Baseline",
    "VariantSpec",
    "Scenario",
    "EDGE_PATTERN",
    "json_schema",
    "STEP_DAYS",
    "SUM_TOLERANCE",
    "HINT",
    "SUM_NOT_ONE",
]

#: reporting step → days
STEP_DAYS = {"day": 1.0, "week": 7.0}
SUM_TOLERANCE = 1e-6
#: separates a validator's message from its hint (split again in scenario.checks)
HINT = "\nhint: "
#: error type of a table whose values are fine but do not add up to 1: later checks may
#: still read those values (see :func:`funnelsim.scenario.checks.check_schema`)
SUM_NOT_ONE = "sum_not_one"


def _sums_to_one(table: dict[str, float] | None, what: str, hint: str) -> dict[str, float] | None:
    if table:
        total = sum(table.values())
        if abs(total - 1.0) > SUM_TOLERANCE:
            message = f"{what} sum to {total:g}, not 1{HINT}{hint}"
            raise PydanticCustomError(SUM_NOT_ONE, "{message}", {"message": message})
    return table


Probability = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]
NonNegative = Annotated[float, Field(ge=0.0, allow_inf_nan=False)]
Positive = Annotated[float, Field(gt=0.0, allow_inf_nan=False)]
#: ``source -> target`` (also ``→``)
EDGE_PATTERN = re.compile(r"^\s*([^\s>→-][^>→]*?)\s*(?:->|→)\s*([^\s>→-][^>→]*?)\s*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DwellSpec(_Strict):
    """The distribution of time spent in a stage (default exponential)."""

    dist: Literal["exponential", "gamma", "lognormal", "weibull", "fixed"] = "exponential"
    mean: Annotated[float, Field(gt=0.0, allow_inf_nan=False)] | None = Field(
        None, description="Mean days in the stage (instead of `dwell_days`)."
    )
    shape: Positive | None = Field(
        None, description="Gamma or Weibull shape, or lognormal σ (of the log of the dwell)."
    )

    @model_validator(mode="after")
    def _shape(self) -> DwellSpec:
        if self.dist in ("gamma", "lognormal", "weibull") and self.shape is None:
            raise ValueError(
                f"a {self.dist} dwell needs `shape`{HINT}"
                + (
                    "σ of the log of the dwell, e.g. 0.5"
                    if self.dist == "lognormal"
                    else "e.g. `shape: 3`; 1 is the exponential"
                )
            )
        if self.dist in ("exponential", "fixed") and self.shape is not None:
            raise ValueError(f"an {self.dist} dwell has no `shape`")
        return self


class CapacitySpec(_Strict):
    """Servers a stage needs (a sales team that calls each lead): people queue for one,
    service takes an exponential time, and whoever waits past their patience is lost.
    Needs the agent engine."""

    servers: Annotated[int, Field(gt=0)]
    service_days: Positive
    patience_days: Positive | None = Field(None, description="Longest wait before giving up.")


class StageSpec(_Strict):
    """One stage: either mean dwell + routing, or hazard rates per day."""

    dwell_days: Annotated[float, Field(gt=0.0, allow_inf_nan=False)] | None = Field(
        None, description="Mean time in the stage before the next event, in days."
    )
    next: dict[str, Probability] | None = Field(
        None, description="Where people go when they leave: target stage → probability (sums to 1)."
    )
    rates: dict[str, NonNegative] | None = Field(
        None, description="Alternative to dwell_days + next: target stage → hazard rate per day."
    )
    dwell: DwellSpec | None = Field(
        None, description="Dwell distribution, e.g. `{dist: gamma, mean: 10, shape: 3}`."
    )
    capacity: CapacitySpec | None = None
    referrals_per_day: NonNegative = Field(
        0.0,
        description="Word of mouth: contacts per day each person in this stage makes; "
        "each contact is a new arrival (channel `referral`).",
    )
    description: str = ""

    @property
    def mean_days(self) -> float | None:
        """Mean dwell, from `dwell_days`, `dwell.mean` or (capacity stages) the service time."""
        if self.dwell_days is not None:
            return self.dwell_days
        if self.dwell is not None and self.dwell.mean is not None:
            return self.dwell.mean
        return self.capacity.service_days if self.capacity is not None else None

    @model_validator(mode="after")
    def _one_form(self) -> StageSpec:
        dwell_mean = self.dwell is not None and self.dwell.mean is not None
        if self.dwell_days is not None and dwell_mean:
            raise ValueError("give the mean dwell once: `dwell_days` or `dwell.mean`")
        routing = self.dwell_days is not None or self.next is not None or dwell_mean
        if routing and self.rates is not None:
            raise ValueError("give either `dwell_days` + `next` or `rates`, not both")
        if self.capacity is not None:
            if self.next is None:
                raise ValueError(
                    "a stage with `capacity` needs `next`: where people go after their service"
                )
            return self
        if not routing and self.rates is None:
            raise ValueError(
                "give `dwell_days` and `next` (or `rates`; `rates: {}` for a stage nobody leaves)"
            )
        if routing and (self.mean_days is None or self.next is None):
            missing = "next" if self.next is None else "dwell_days"
            raise ValueError(f"`{missing}` is missing: `dwell_days` and `next` go together")
        return self

    @field_validator("next")
    @classmethod
    def _routing_sums_to_one(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        return _sums_to_one(
            value,
            "routing probabilities in `next`",
            "the shares of people leaving to each target must add up to 1",
        )

    def rate_table(self) -> dict[str, float]:
        """Hazard rates per day to each target."""
        if self.rates is not None:
            return dict(self.rates)
        mean = self.mean_days
        assert mean is not None and self.next is not None
        return {k: v / mean for k, v in self.next.items()}


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
        None,
        description="Simulation clock step in days (default: chosen from the fastest "
        "stage, at most one day).",
    )

    @property
    def step_days(self) -> float:
        return STEP_DAYS[self.step]


class Population(_Strict):
    """Who is already in the funnel at the start, and how big the market is."""

    initial: dict[str, Annotated[int, Field(ge=0)]] = Field(
        default_factory=dict, description="People in each stage at the start."
    )
    from_fit: str | None = Field(
        None,
        description="A journey fit (FIT.nc, relative to this file): start from where its "
        "customers stand at the end of its data (the nowcast's expected occupancy per "
        "stage), so the forecast continues the real history; `horizon.start` must be "
        "the end of the fit's data. Give `from_fit` or `initial`, not both.",
    )
    market_size: Annotated[int, Field(gt=0)] | None = Field(
        None,
        description="People who could ever arrive. With it, arrivals come from the "
        "unaware pool and slow down as it empties (`arrivals.per_day` is the "
        "rate while everyone is unaware).",
    )

    @model_validator(mode="after")
    def _fits(self) -> Population:
        if self.market_size is not None and sum(self.initial.values()) > self.market_size:
            raise ValueError(
                f"`initial` puts {sum(self.initial.values())} people in the funnel, "
                f"more than `market_size` {self.market_size}"
            )
        return self


class Arrivals(_Strict):
    """New people entering the funnel: a Poisson stream split by channel."""

    per_day: NonNegative
    stage: str | None = Field(None, description="Stage arrivals enter (default: funnel entry).")
    channels: dict[str, NonNegative] | None = Field(
        None, description="Share of arrivals by channel (sums to 1)."
    )

    @field_validator("channels")
    @classmethod
    def _shares(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        if value is not None and not value:
            raise ValueError("`channels` is empty: name at least one channel or drop the key")
        return _sums_to_one(
            value, "channel shares", "the channel shares of arrivals must add up to 1"
        )


class SpendSpec(_Strict):
    """Media spend of a campaign: a total spread evenly over its window, an amount per
    day, or a column of a CSV file of daily spend (columns `date` and the named one)."""

    total: NonNegative | None = None
    per_day: NonNegative | None = None
    csv: str | None = Field(None, description="CSV path, relative to the scenario file.")
    column: str | None = Field(None, description="Column of the CSV (default: campaign name).")

    @model_validator(mode="after")
    def _one(self) -> SpendSpec:
        given = [k for k in ("total", "per_day", "csv") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of `total`, `per_day` or `csv`")
        if self.column is not None and self.csv is None:
            raise ValueError("`column` goes with `csv`")
        return self


class EffectSpec(_Strict):
    """What a campaign moves: an edge's rate, or arrivals of a channel (``*``: all)."""

    edge: str | None = Field(None, description="`source -> target`, e.g. `desire -> conversion`.")
    arrivals: str | None = Field(None, description="Channel whose arrivals it boosts (`*`: all).")
    lift: Positive = Field(description="Rate multiplier at full pressure (1 = no effect).")

    @field_validator("edge")
    @classmethod
    def _edge_form(cls, value: str | None) -> str | None:
        if value is not None and not EDGE_PATTERN.match(value):
            raise ValueError(
                f"edge {value!r} should read `source -> target`{HINT}e.g. `desire -> conversion`"
            )
        return value

    @model_validator(mode="after")
    def _target(self) -> EffectSpec:
        if (self.edge is None) == (self.arrivals is None):
            raise ValueError(
                "give exactly one of `edge` (e.g. `desire -> conversion`) or "
                f"`arrivals` (a channel){HINT}one effect per list item, e.g. "
                "`{edge: desire -> conversion, lift: 2}` or `{arrivals: social, "
                "lift: 1.5}`"
            )
        return self

    def edge_pair(self) -> tuple[str, str]:
        match = EDGE_PATTERN.match(self.edge or "")
        assert match is not None
        return match.group(1), match.group(2)


class CampaignSpec(_Strict):
    """A campaign: when it runs, what it spends, how spend turns into pressure, what it moves."""

    description: str = ""
    start: dt.date | None = Field(None, description="First day (default: horizon start).")
    end: dt.date | None = Field(None, description="Last day, inclusive (default: horizon end).")
    spend: SpendSpec | None = None
    carryover: Annotated[float, Field(ge=0.0, lt=1.0)] = Field(
        0.0, description="Share of yesterday's adstock that still works today, in [0, 1)."
    )
    half_saturation: Positive | None = Field(
        None, description="Adstocked spend per day that gives half the full effect."
    )
    shape: Positive = Field(1.0, description="Hill exponent of the saturation curve.")
    effects: list[EffectSpec] = Field(min_length=1)
    segments: list[str] = Field(default_factory=list, description="Personas it reaches (all).")
    cost_per_day: NonNegative = Field(0.0, description="Running cost per day in the window.")
    fixed_cost: NonNegative = Field(0.0, description="One-off cost on the first day.")

    @field_validator("end")
    @classmethod
    def _after_start(cls, value: dt.date | None, info: ValidationInfo) -> dt.date | None:
        start = info.data.get("start")
        if value is not None and start is not None and value < start:
            raise ValueError(
                f"`end` {value} is before `start` {start}{HINT}a window runs "
                "from `start` to `end`, both days included"
            )
        return value

    @model_validator(mode="after")
    def _consistent(self) -> CampaignSpec:
        if self.spend is not None and self.half_saturation is None:
            raise ValueError(
                "a campaign with `spend` needs `half_saturation` (the daily spend "
                f"that gives half of the full lift){HINT}e.g. the spend per day "
                "you plan; pressure is then about ½ on such a day"
            )
        return self


class SegmentSpec(_Strict):
    """A persona: its share of arrivals and its own version of some stages."""

    share: Positive
    description: str = ""
    stages: dict[str, StageSpec] = Field(
        default_factory=dict, description="Stages that behave differently for this persona."
    )


class Economics(_Strict):
    """Money: value per conversion (repeat purchases count again) and per other entries."""

    value_per_conversion: NonNegative = 0.0
    value_per_entry: dict[str, NonNegative] = Field(
        default_factory=dict, description="Value of each entry into other stages."
    )
    currency: str = ""


class Baseline(_Strict):
    """The plan every variant is compared with."""

    label: str = "baseline"
    description: str = ""
    campaigns: dict[str, CampaignSpec] = Field(default_factory=dict)


class VariantSpec(_Strict):
    """A patch of the baseline: campaigns added, altered (only the keys given) or removed
    (`name: null`); `arrivals`, `population` and `economics` keys replaced."""

    label: str = ""
    description: str = ""
    campaigns: dict[str, dict[str, Any] | None] = Field(default_factory=dict)
    arrivals: dict[str, Any] | None = None
    population: dict[str, Any] | None = None
    economics: dict[str, Any] | None = None


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
    fit: str | None = Field(
        None,
        description="A fit file written by `funnelsim fit` (relative to this file): the funnel "
        "comes from it and replicate r uses posterior draw r (give `fit:` or `funnel:`).",
    )
    population: Population = Field(default_factory=Population)
    arrivals: Arrivals | None = None
    segments: dict[str, SegmentSpec] = Field(default_factory=dict)
    economics: Economics = Field(default_factory=Economics)
    baseline: Baseline = Field(default_factory=Baseline)
    variants: dict[str, VariantSpec] = Field(default_factory=dict)
    common_random_numbers: bool = Field(
        True, description="Replicate r of every variant uses the same random streams."
    )
    replicates: Annotated[int, Field(gt=0, le=1_000_000)] = 500
    seed: Annotated[int, Field(ge=0)] | None = Field(
        None, description="Random seed; omitted → a fresh one, recorded in scenario.resolved.yaml."
    )
    engine: Literal["counts", "expected", "agents"] = "counts"
    outputs: Outputs = Field(default_factory=Outputs)

    _source: Path | None = PrivateAttr(None)
    #: the loaded fit (a FittedFunnel) when the scenario says `fit:`
    _fit: Any = PrivateAttr(None)
    # (FittedFunnel, Nowcast) of `population: {from_fit}`, None without
    _start: Any = PrivateAttr(None)
    #: line of each key path in the file(s) it was loaded from (for located warnings)
    _lines: dict[tuple[str | int, ...], tuple[str, int]] = PrivateAttr(default_factory=dict)


def json_schema() -> dict:
    """JSON Schema of scenario files (``funnel`` may also be a preset name or a path)."""
    schema = Scenario.model_json_schema()
    funnel = schema["properties"]["funnel"]
    ref = {k: funnel.pop(k) for k in list(funnel) if k in ("$ref", "allOf")}
    funnel["anyOf"] = [
        ref if "$ref" in ref else ref.get("allOf", [{}])[0],
        {"type": "string", "description": "preset name or path to a funnel YAML"},
    ]
    schema["required"] = [k for k in schema.get("required", []) if k != "funnel"]
    schema["title"] = "funnelsim scenario"
    return schema
