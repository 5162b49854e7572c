"""Make the example dashboard data: counts.csv, spend.csv and truth.yaml.

The data are SIMULATED with funnelsim's count engine (funnelsim.engines.counts, through
funnelsim.data.synthetic.simulate_counts): two years of a four-stage funnel fed by
~1,500 new people a day with a trend and a yearly season, and three campaigns with
flighted spend. No real company's numbers are in them. truth.yaml records the rates,
lifts, carryover and saturation that made them, and what each campaign truly added to
each stage (the expected engine with and without the campaign), so a fit of
counts.csv can be checked against the truth. funnel.yaml and priors.yaml are written
by hand: a planner's rough guesses, not the truth.

Run: ``python scenarios/data/make_counts.py`` (seeded: same files every time).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from funnelsim.campaigns import Campaign
from funnelsim.data.synthetic import flighted_spend, simulate_counts, true_contributions
from funnelsim.dynamics import choose_dt
from funnelsim.funnel import Funnel

START, PERIODS, PERIOD_DAYS, BURN_IN, SEED = "2024-01-01", 104, 7, 26, 2024
HERE = Path(__file__).resolve().parent
ARRIVALS = {"per_day": 1500.0, "trend": 0.15, "yearly": 0.25, "peak_day": 330}  # 330: late Nov
OCCUPANCY = ["conversion"]  # active customers

DWELL = {"awareness": 12.0, "interest": 10.0, "desire": 13.0, "conversion": 120.0}
NEXT = {
    "awareness": {"interest": 0.35, "lost": 0.65},
    "interest": {"desire": 0.40, "awareness": 0.15, "lost": 0.45},
    "desire": {"conversion": 0.45, "lost": 0.55},
    "conversion": {"lost": 1.0},  # churn of active customers
}

# flights: (first week, weeks, spend per day); tv runs big in both Novembers (the peak)
FLIGHTS = {
    "tv": [(5, 5, 4000), (16, 4, 8000), (27, 3, 4000), (42, 8, 15000), (60, 6, 8000),
           (74, 4, 4000), (93, 8, 15000)],
    "social": [(0, 4, 3000), (10, 6, 1500), (22, 5, 6000), (34, 3, 3000), (50, 6, 1500),
               (64, 5, 6000), (79, 7, 3000), (97, 4, 6000)],
    "coupons": [(3, 2, 1500), (13, 3, 800), (24, 2, 3000), (38, 3, 1500), (47, 2, 3000),
                (57, 3, 800), (70, 2, 1500), (84, 3, 3000), (99, 2, 1500)],
}  # fmt: skip


class Effect(NamedTuple):
    """What a campaign moves and how: ``lift`` at full pressure, spend carried over with
    a half-life in days, half_saturation in adstocked spend per day."""

    moves: str  # "arrivals" or an edge "a -> b"
    lift: float
    half_life_days: float
    half_saturation: float


EFFECTS = {
    "tv": Effect("arrivals", 1.6, 10.0, 100000.0),
    "social": Effect("awareness -> interest", 1.8, 5.0, 20000.0),
    "coupons": Effect("desire -> conversion", 2.0, 0.0, 1500.0),
}


def campaign(name: str) -> Campaign:
    """The true campaign ``name`` on the history's days."""
    effect = EFFECTS[name]
    days = PERIODS * PERIOD_DAYS
    src, _, dst = effect.moves.partition(" -> ")
    on_arrivals = effect.moves == "arrivals"
    return Campaign(
        name,
        0,
        days - 1,
        days,
        spend=flighted_spend(PERIODS, FLIGHTS[name], PERIOD_DAYS),
        carryover=0.5 ** (1.0 / effect.half_life_days) if effect.half_life_days > 0 else 0.0,
        half_saturation=effect.half_saturation,
        edge_lifts={} if on_arrivals else {(src, dst): effect.lift},
        arrival_lifts={"*": effect.lift} if on_arrivals else {},
    )


def main() -> None:
    funnel = Funnel.from_routing(DWELL, NEXT, goal="conversion")
    campaigns = [campaign(name) for name in FLIGHTS]
    settings: dict[str, Any] = dict(
        start=START,
        periods=PERIODS,
        period_days=PERIOD_DAYS,
        arrivals_per_day=ARRIVALS["per_day"],
        trend=ARRIVALS["trend"],
        yearly=ARRIVALS["yearly"],
        peak_day=int(ARRIVALS["peak_day"]),
    )
    counts, spend = simulate_counts(
        funnel,
        campaigns,
        **settings,
        occupancy=OCCUPANCY,
        burn_in=BURN_IN,
        seed=SEED,
    )
    counts.to_csv(HERE / "counts.csv", index=False)
    spend.to_csv(HERE / "spend.csv", index=False, float_format="%.2f")
    stages = [s for s in funnel.stages if s != "lost"]
    contributions = {
        stage: {
            name: round(value, 1)
            for name, value in true_contributions(
                funnel,
                campaigns,
                **settings,
                burn_in=BURN_IN,
                stage=stage,
            ).items()
        }
        for stage in stages
    }
    truth = {
        "funnel": {
            "goal": "conversion",
            "stages": {s: {"dwell_days": DWELL[s], "next": NEXT[s]} for s in stages},
        },
        "rates_per_day": {
            f"{a} -> {b}": round(float(funnel.rate(a, b)), 6) for a, b in funnel.edges
        },
        "history": {"start": START, "periods": PERIODS, "period_days": PERIOD_DAYS},
        "arrivals": {"stage": funnel.entry, **ARRIVALS},
        "campaigns": {
            c.name: {
                **EFFECTS[c.name]._asdict(),
                "carryover": round(c.carryover, 6),
                "shape": c.shape,
                "total_spend": round(float(spend[c.name].sum()), 2),
            }
            for c in campaigns
        },
        "contributions": contributions,
        "simulation": {
            "engine": "counts",
            "seed": SEED,
            "burn_in_periods": BURN_IN,
            "occupancy": OCCUPANCY,
            "dt_days": choose_dt(funnel, PERIOD_DAYS),
        },
    }
    header = (
        "# The truth behind counts.csv and spend.csv (written by make_counts.py: do not edit).\n"
        "# Simulated with funnelsim's count engine; `contributions` are entries into each\n"
        "# stage over the 104 weeks with all campaigns minus without that campaign (expected\n"
        "# engine). Campaign pressure = hill(adstock(spend)): adstock carries spend over at\n"
        "# `carryover` per day (0.5 ** (1 / half_life_days)); half_saturation is in adstocked\n"
        "# spend per day; rate (or arrivals) x lift ** pressure. Arrivals per day =\n"
        "# per_day * exp(trend * t / T + yearly * cos(2 pi (day_of_year - peak_day) / 365.25)).\n"
    )
    with open(HERE / "truth.yaml", "w", encoding="utf-8") as handle:
        handle.write(header + yaml.safe_dump(truth, sort_keys=False, width=100))
    weeks = counts.pivot_table(index="period", columns=["stage", "kind"], values="count")
    print(f"wrote counts.csv ({len(counts)} rows, {len(weeks)} weeks), spend.csv, truth.yaml")
    print(f"conversions: {weeks[('conversion', 'entries')].sum():,.0f}; contributions to them:")
    for name, value in contributions["conversion"].items():
        per_1000 = value / math.fsum(spend[name]) * 1000
        print(f"  {name:8s} {value:10,.0f}  ({per_1000:.2f} per 1,000 spent)")


if __name__ == "__main__":
    main()
