"""Priors of a count fit, settable in a YAML file (``funnelsim fit --kind counts --priors``).

Every key is optional; the defaults are the documented ones below.

.. code-block:: yaml

    rates: {sd_log: 1.0}          # base rate ~ LogNormal(log(funnel's rate), sd_log)
    latent: [desire]              # funnel stages the counts do not include
    campaigns:
      tv:
        moves: [arrivals]         # "arrivals" or edges "a -> b"; or a mapping
                                  # target -> prior median of the lift at full pressure
        lift_sd_log: 0.5          # log-lift ~ Normal(log(median), lift_sd_log)
        half_life_days: {median: 7, sd_log: 1.0}   # carryover = 0.5 ** (1 / half-life)
        half_saturation: {median: 400, sd_log: 1.0}  # adstocked spend per day at half
                                  # the full lift (default median: typical adstocked spend)
        shape: 1.0                # Hill shape (fixed)
      social: {moves: {awareness -> interest: 1.3}}
    arrivals: {trend_sd: 0.5, yearly_terms: 2, weekly_terms: 0, seasonal_sd: 0.3}
    noise: {sd: 0.1, per_series: false, process: true}
                                  # process: people move at random (the default when
                                  # every series' median count is 20 or more) or false:
                                  # counts NegativeBinomial around the mean flows with
                                  # extra relative noise ~ HalfNormal(sd), one for all
                                  # series by default (the default for smaller counts)

Campaigns not named here (spend columns) may move arrivals and every forward edge of
the funnel, each with a lift centred on 1 (no effect): the data decide which.

>>> p = CountPriors.model_validate({"campaigns": {"tv": {"moves": ["arrivals"]}}})
>>> p.campaigns["tv"].targets(), p.rates.sd_log
({'arrivals': None}, 1.0)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, ValidationError, field_validator

from funnelsim.errors import Problem, ScenarioError

__all__ = ["CountPriors", "CampaignPrior", "read_count_priors", "ARRIVALS"]

#: the target name of a campaign that brings new people in
ARRIVALS = "arrivals"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LogNormalPrior(_Strict):
    median: PositiveFloat
    sd_log: PositiveFloat = 1.0


class RatePrior(_Strict):
    sd_log: PositiveFloat = Field(1.0, description="sd of log(rate) around the funnel's rate")


class CampaignPrior(_Strict):
    moves: list[str] | dict[str, PositiveFloat] | None = None
    lift_sd_log: PositiveFloat = 0.5
    half_life_days: LogNormalPrior = LogNormalPrior(median=7.0, sd_log=1.0)
    half_saturation: LogNormalPrior | None = None
    shape: PositiveFloat = 1.0

    @field_validator("moves")
    @classmethod
    def _arrows(cls, value: Any) -> Any:
        for target in value or ():
            if target != ARRIVALS and " -> " not in str(target):
                raise ValueError(
                    f"{target!r} is neither `arrivals` nor an edge\n"
                    "hint: write edges as `source -> target`, e.g. awareness -> interest"
                )
        return value

    def targets(self) -> dict[str, float | None] | None:
        """Target → prior median lift (None: centred on no effect); None: not given."""
        if self.moves is None:
            return None
        if isinstance(self.moves, dict):
            return {" -> ".join(p.strip() for p in k.split("->")): v for k, v in self.moves.items()}
        return {" -> ".join(p.strip() for p in k.split("->")): None for k in self.moves}


class ArrivalPrior(_Strict):
    trend_sd: PositiveFloat = 0.5
    yearly_terms: int | None = Field(None, ge=0, le=6)
    weekly_terms: int | None = Field(None, ge=0, le=3)
    seasonal_sd: PositiveFloat = 0.3


class NoisePrior(_Strict):
    sd: PositiveFloat = 0.1
    per_series: bool = False
    process: bool | None = None  # None: random flows unless the counts are small


class CountPriors(_Strict):
    rates: RatePrior = RatePrior()
    latent: list[str] = []
    campaigns: dict[str, CampaignPrior] = {}
    arrivals: ArrivalPrior = ArrivalPrior()
    noise: NoisePrior = NoisePrior()


def read_count_priors(path: str | Path) -> CountPriors:
    """Priors from a YAML file; problems are reported with file and line."""
    from funnelsim.inference.campaign_data import _located
    from funnelsim.scenario.yamlio import read_yaml

    label = str(path)
    raw, lines = read_yaml(Path(path), label=label)
    try:
        return CountPriors.model_validate(raw or {})
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(p for p in err["loc"] if isinstance(p, str | int))
            message, _, hint = err["msg"].removeprefix("Value error, ").partition("\nhint: ")
            if err["type"] == "extra_forbidden":
                hint = hint or "keys: rates, latent, campaigns, arrivals, noise (see the docs)"
            problems.append(_located(Problem(loc, message, hint), lines, label))
        raise ScenarioError(problems, label) from None
