"""A planner's scenario has mistakes: every one is reported at once, located, with a hint.

Each file in ``tests/bad_scenarios/`` holds one class of mistake (a few hold several at
once); the spend files their campaigns read are in ``tests/bad_scenarios/spend/``. For
each, the real command line must exit with code 2, name every problem with its
``file:line``, its YAML path and a hint, print no traceback, and write nothing: ``run``
creates no output folder and leaves an existing one byte-for-byte as it was.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from funnelsim import cli
from funnelsim.cli import app
from funnelsim.errors import format_path
from funnelsim.scenario import checks, load_scenario, run, validate_file
from funnelsim.scenario.checks import MEMORY_SAFETY_FACTOR

from .conftest import SCENARIOS

BAD = Path(__file__).resolve().parent / "bad_scenarios"
runner = CliRunner()
DATE_HINT = "write dates as YYYY-MM-DD, e.g. 2026-11-01"
POSITIVE = "use a positive number"
NOT_NEGATIVE = "negative values make no sense here"
BELOW_ONE = "the share of yesterday's adstock still working today is below 1"
PLAIN_NUMBER = "use plain numbers such as 1250.50, no currency signs"
NOVEMBER = "the horizon runs from 2026-11-01 to 2026-11-30"
MONEY_HINT = "write plain numbers without currency signs or thousands separators"
ADD_PEOPLE = "add new people per day (`arrivals: {per_day: 300}`) or people there at the start"
TWICE = "put the whole value of a sale in `value_per_conversion` and remove this line"


ONE_EFFECT = (
    "one effect per list item, e.g. `{edge: desire -> conversion, lift: 2}` or "
    "`{arrivals: social, lift: 1.5}`"
)


@dataclass(frozen=True)
class Want:
    """One problem the output must show: ``<file>:<line> <path>: …message… — …hint…``."""

    line: int | None
    path: str
    message: str
    hint: str = ""
    file: str = ""  # the bad scenario itself unless given (e.g. a funnel file it points to)


@dataclass(frozen=True)
class Case:
    file: str
    wants: tuple[Want, ...]


CASES = [
    pytest.param(
        Case(
            "unknown_next_stage.yaml",
            (
                Want(
                    15,
                    "funnel.stages.interest.next.desier",
                    "unknown stage 'desier' in `next` of 'interest'",
                    "did you mean 'desire'?",
                ),
            ),
        ),
        id="unknown stage in next",
    ),
    pytest.param(
        Case(
            "routing_not_one.yaml",
            (
                Want(
                    17,
                    "funnel.stages.desire.next",
                    "routing probabilities in `next` sum to 0.9, not 1",
                    "must add up to 1",
                ),
            ),
        ),
        id="routing does not sum to 1",
    ),
    pytest.param(
        Case(
            "zero_dwell.yaml",
            (Want(13, "funnel.stages.interest.dwell_days", "greater than 0 (got 0)", POSITIVE),),
        ),
        id="zero dwell",
    ),
    pytest.param(
        Case(
            "negative_dwell.yaml",
            (Want(16, "funnel.stages.desire.dwell_days", "greater than 0 (got -7)", POSITIVE),),
        ),
        id="negative dwell",
    ),
    pytest.param(
        Case(
            "unknown_top_level_key.yaml",
            (Want(7, "replicats", "unknown key 'replicats'", "did you mean 'replicates'?"),),
        ),
        id="unknown top-level key",
    ),
    pytest.param(
        Case(
            "unknown_stage_key.yaml",
            (
                Want(
                    13,
                    "funnel.stages.interest.dwel_days",
                    "unknown key 'dwel_days'",
                    "did you mean 'dwell_days'?",
                ),
            ),
        ),
        id="unknown key inside a stage",
    ),
    pytest.param(
        Case(
            "goal_not_a_stage.yaml",
            (
                Want(
                    7,
                    "funnel.goal",
                    "unknown stage 'converion' in `goal`",
                    "did you mean 'conversion'?",
                ),
            ),
        ),
        id="goal not a stage",
    ),
    pytest.param(
        Case(
            "no_path_to_goal.yaml",
            (
                Want(
                    7,
                    "funnel.goal",
                    "no path from the entry stage 'awareness' to the goal 'conversion'",
                    "add an edge (in `next` or `rates`) that leads towards the goal",
                ),
            ),
        ),
        id="no path from entry to goal",
    ),
    pytest.param(
        Case(
            "start_not_a_date.yaml",
            (
                Want(
                    4,
                    "horizon.start",
                    "month value is outside expected range of 1-12 (got '2026-13-45')",
                    DATE_HINT,
                ),
            ),
        ),
        id="impossible start date",
    ),
    pytest.param(
        Case(
            "start_in_words.yaml",
            (
                Want(
                    4,
                    "horizon.start",
                    "valid date or datetime, invalid character in year (got 'next tuesday')",
                    DATE_HINT,
                ),
            ),
        ),
        id="start date in words",
    ),
    pytest.param(
        Case(
            "no_such_scenario.yaml",
            (Want(None, "(top level)", "file not found:", "check the path"),),
        ),
        id="missing scenario file",
    ),
    pytest.param(
        Case(
            "funnel_file_missing.yaml",
            (Want(6, "funnel", "file not found:", "or name a preset: bike_shop, saas, web"),),
        ),
        id="missing funnel file",
    ),
    pytest.param(
        Case(
            "unknown_preset.yaml",
            (Want(6, "funnel", "unknown preset 'bikeshop'", "did you mean 'bike_shop'?"),),
        ),
        id="misspelt preset",
    ),
    pytest.param(
        Case(
            "unknown_preset_far.yaml",
            (
                Want(
                    6,
                    "funnel",
                    "unknown preset 'ecommerce'",
                    "expected one of: bike_shop, saas, web",
                ),
            ),
        ),
        id="unknown preset lists the presets",
    ),
    pytest.param(
        Case(
            "funnel_file_with_mistake.yaml",
            (
                Want(
                    7,
                    "funnel.stages.visit.next.sigup",
                    "unknown stage 'sigup' in `next` of 'visit'",
                    "did you mean 'signup'?",
                    file="funnels/typo_funnel.yaml",
                ),
            ),
        ),
        id="mistake inside a funnel file",
    ),
    pytest.param(
        Case(
            "funnel_file_invalid_yaml.yaml",
            (
                Want(
                    11,
                    "funnel",
                    "not valid YAML: found unexpected end of stream "
                    "(while scanning a quoted scalar that starts on line 6)",
                    "quotes near this line",
                    file="funnels/broken_funnel.yaml",
                ),
            ),
        ),
        id="funnel file is not valid YAML",
    ),
    pytest.param(
        Case(
            "invalid_yaml.yaml",
            (
                Want(
                    9,
                    "(top level)",
                    "not valid YAML: expected ',' or '}', but got '<scalar>' "
                    "(while parsing a flow mapping that starts on line 8)",
                    "brackets and quotes",
                ),
            ),
        ),
        id="invalid YAML syntax",
    ),
    pytest.param(
        Case(
            "empty.yaml",
            (
                Want(
                    1,
                    "(top level)",
                    "a scenario file must be a mapping of keys, got an empty file",
                    "start from scenarios/bike_shop.yaml",
                ),
            ),
        ),
        id="empty file",
    ),
    pytest.param(
        Case(
            "channel_shares.yaml",
            (Want(9, "arrivals.channels", "channel shares sum to 1.2, not 1", "must add up to 1"),),
        ),
        id="channel shares do not sum to 1",
    ),
    pytest.param(
        Case(
            "initial_unknown_stage.yaml",
            (
                Want(
                    9,
                    "population.initial.awarness",
                    "unknown stage 'awarness' in `population.initial`",
                    "did you mean 'awareness'?",
                ),
            ),
        ),
        id="initial population in an unknown stage",
    ),
    pytest.param(
        Case(
            "negative_replicates.yaml",
            (Want(7, "replicates", "greater than 0 (got -5)", POSITIVE),),
        ),
        id="negative replicates",
    ),
    pytest.param(
        Case(
            "duplicate_key.yaml",
            (
                Want(
                    15,
                    "funnel.stages.interest",
                    "duplicate key 'interest' (first on line 12)",
                    "YAML keeps only the last one",
                ),
            ),
        ),
        id="duplicate key",
    ),
    pytest.param(
        Case(
            "recursive_alias.yaml",
            (Want(6, "name", "Input should be a valid string", "write plain text here"),),
        ),
        id="recursive YAML alias",
    ),
    pytest.param(
        Case(
            "agents_only_features.yaml",
            (
                Want(9, "funnel.stages.lead.capacity.servers", "greater than 0 (got 0)", POSITIVE),
                Want(
                    9,
                    "funnel.stages.lead.capacity",
                    "a stage with `capacity` needs the agents engine, not 'counts'",
                    "set `engine: agents`",
                ),
                Want(
                    10,
                    "funnel.stages.trial.dwell.dist",
                    "(got 'weibul')",
                    "did you mean 'weibull'?",
                ),
                Want(
                    11,
                    "funnel.stages.customer.dwell.dist",
                    "a lognormal dwell needs the agents engine",
                    "set `engine: agents`, or use a gamma dwell with a whole-number shape",
                ),
                Want(
                    12,
                    "funnel.stages.lost.capacity",
                    "`lost` cannot have a capacity",
                    "people who left the funnel are served by nobody",
                ),
                Want(
                    14,
                    "segments.big.stages.lead.capacity",
                    "a persona cannot have its own capacity",
                    "servers are shared by everyone",
                ),
            ),
        ),
        id="queues and dwell shapes the count engine cannot run",
    ),
    pytest.param(
        Case(
            "several_mistakes.yaml",
            (
                Want(3, "replicats", "unknown key 'replicats'", "did you mean 'replicates'?"),
                Want(5, "horizon.start", "(got 'next tuesday')", DATE_HINT),
                Want(
                    8,
                    "funnel.goal",
                    "unknown stage 'purchase' in `goal`",
                    "expected one of: awareness, interest, desire, conversion",
                ),
                Want(11, "funnel.stages.awareness.dwell_days", "greater than 0 (got 0)", POSITIVE),
                Want(
                    12,
                    "funnel.stages.awareness.next.intrest",
                    "unknown stage 'intrest'",
                    "did you mean 'interest'?",
                ),
                Want(
                    14,
                    "funnel.stages.interest.dwel_days",
                    "unknown key 'dwel_days'",
                    "did you mean 'dwell_days'?",
                ),
                Want(17, "funnel.stages.desire.dwell_days", "greater than 0 (got -7)", POSITIVE),
                Want(18, "funnel.stages.desire.next", "sum to 0.9, not 1", "must add up to 1"),
                Want(
                    24,
                    "population.initial.awarness",
                    "unknown stage 'awarness'",
                    "did you mean 'awareness'?",
                ),
                Want(
                    27, "arrivals.channels", "channel shares sum to 1.2, not 1", "must add up to 1"
                ),
                Want(
                    29,
                    "seed",
                    "duplicate key 'seed' (first on line 28)",
                    "YAML keeps only the last one",
                ),
            ),
        ),
        id="several mistakes in one file",
    ),
    pytest.param(
        Case(
            "several_mistakes_with_preset.yaml",
            (
                Want(4, "horizon.start", "(got '2026-13-45')", DATE_HINT),
                Want(5, "horizon.periods", "greater than 0 (got 0)", POSITIVE),
                Want(6, "funnel", "unknown preset 'bikeshop'", "did you mean 'bike_shop'?"),
                Want(7, "replicates", "greater than 0 (got 0)", POSITIVE),
                Want(
                    9,
                    "seed",
                    "duplicate key 'seed' (first on line 8)",
                    "YAML keeps only the last one",
                ),
            ),
        ),
        id="misspelt preset does not hide other mistakes",
    ),
    # campaigns
    pytest.param(
        Case(
            "campaign_missing_edge.yaml",
            (
                Want(
                    18,
                    "baseline.campaigns.holiday_sale.effects[0].edge",
                    "campaign 'holiday_sale' targets edge 'awareness -> conversion', which the "
                    "funnel does not have",
                    "declare the edge in the funnel first (a small rate is enough); "
                    "did you mean 'awareness -> interest'?",
                ),
            ),
        ),
        id="campaign on an edge the funnel does not have",
    ),
    pytest.param(
        Case(
            "campaign_unknown_stage.yaml",
            (
                Want(
                    18,
                    "baseline.campaigns.holiday_sale.effects[0].edge",
                    "targets edge 'desire -> convertion', which the funnel does not have",
                    "did you mean 'conversion'?",
                ),
            ),
        ),
        id="campaign on an unknown stage",
    ),
    pytest.param(
        Case(
            "campaign_window_outside_horizon.yaml",
            (
                Want(
                    18,
                    "baseline.campaigns.early_bird.start",
                    "start 2026-10-15 is outside the horizon",
                    NOVEMBER,
                ),
                Want(
                    22,
                    "baseline.campaigns.holiday_sale.end",
                    "end 2026-12-31 is outside the horizon",
                    NOVEMBER,
                ),
            ),
        ),
        id="campaign window outside the horizon",
    ),
    pytest.param(
        Case(
            "campaign_end_before_start.yaml",
            (
                Want(
                    18,
                    "baseline.campaigns.holiday_sale.end",
                    "`end` 2026-11-10 is before `start` 2026-11-20",
                    "a window runs from `start` to `end`, both days included",
                ),
            ),
        ),
        id="campaign ends before it starts",
    ),
    pytest.param(
        Case(
            "campaign_carryover.yaml",
            (
                Want(
                    19, "baseline.campaigns.instagram.carryover", "less than 1 (got 1.0)", BELOW_ONE
                ),
                Want(
                    24,
                    "baseline.campaigns.radio.carryover",
                    "greater than or equal to 0 (got -0.1)",
                    NOT_NEGATIVE,
                ),
            ),
        ),
        id="carryover outside [0, 1)",
    ),
    pytest.param(
        Case(
            "campaign_negative_spend.yaml",
            (
                Want(
                    17,
                    "baseline.campaigns.instagram.spend.total",
                    "greater than or equal to 0 (got -100)",
                    NOT_NEGATIVE,
                ),
                Want(
                    22,
                    "baseline.campaigns.radio.spend.per_day",
                    "greater than or equal to 0 (got -5)",
                    NOT_NEGATIVE,
                ),
            ),
        ),
        id="negative spend",
    ),
    pytest.param(
        Case(
            "campaign_lift_not_positive.yaml",
            (
                Want(
                    18,
                    "baseline.campaigns.holiday_sale.effects[0].lift",
                    "greater than 0 (got -1)",
                    POSITIVE,
                ),
                Want(
                    19,
                    "baseline.campaigns.holiday_sale.effects[1].lift",
                    "greater than 0 (got 0)",
                    POSITIVE,
                ),
            ),
        ),
        id="negative and zero lift",
    ),
    pytest.param(
        Case(
            "campaign_spend_without_half_saturation.yaml",
            (
                Want(
                    16,
                    "baseline.campaigns.instagram",
                    "a campaign with `spend` needs `half_saturation` "
                    "(the daily spend that gives half of the full lift)",
                    "e.g. the spend per day you plan; pressure is then about ½ on such a day",
                ),
            ),
        ),
        id="spend without half saturation",
    ),
    pytest.param(
        Case(
            "campaign_effect_target.yaml",
            (
                Want(
                    19,
                    "baseline.campaigns.holiday_sale.effects[0]",
                    "give exactly one of `edge` "
                    "(e.g. `desire -> conversion`) or `arrivals` (a channel)",
                    ONE_EFFECT,
                ),
                Want(
                    20,
                    "baseline.campaigns.holiday_sale.effects[1]",
                    "give exactly one of `edge`",
                    ONE_EFFECT,
                ),
                Want(
                    21,
                    "baseline.campaigns.holiday_sale.effects[2].edge",
                    "edge 'desire conversion' should read `source -> target`",
                    "e.g. `desire -> conversion`",
                ),
            ),
        ),
        id="effect with both, neither or a malformed edge",
    ),
    pytest.param(
        Case(
            "campaign_unknown_channel.yaml",
            (
                Want(
                    18,
                    "baseline.campaigns.instagram.effects[0].arrivals",
                    "unknown arrival channel 'socail'",
                    "did you mean 'social'?",
                ),
                Want(
                    19,
                    "baseline.campaigns.instagram.effects[1].arrivals",
                    "unknown arrival channel 'tiktok'",
                    "expected one of: store, search, social, *",
                ),
            ),
        ),
        id="campaign on an unknown arrival channel",
    ),
    pytest.param(
        Case(
            "campaign_unknown_segment.yaml",
            (
                Want(
                    20,
                    "baseline.campaigns.instagram.segments[1]",
                    "unknown segment 'weekend_rider'",
                    "did you mean 'weekend_riders'?",
                ),
            ),
        ),
        id="campaign for an unknown segment",
    ),
    pytest.param(
        Case(
            "campaign_without_personas_or_arrivals.yaml",
            (
                Want(
                    18,
                    "baseline.campaigns.instagram.segments[0]",
                    "unknown segment 'commuters'",
                    "declare the personas under `segments` first",
                ),
                Want(
                    19,
                    "baseline.campaigns.instagram.effects[0].arrivals",
                    "unknown arrival channel 'social'",
                    "the scenario has no `arrivals` to lift",
                ),
            ),
        ),
        id="campaign for personas and arrivals the scenario does not have",
    ),
    # spend files
    pytest.param(
        Case(
            "spend_csv_missing_days.yaml",
            (
                Want(
                    19,
                    "baseline.campaigns.instagram.spend.csv",
                    "spend/missing_days.csv: 3 day(s) of the campaign window have no spend row: "
                    "2026-11-03, 2026-11-04, 2026-11-06",
                    "give one row per day",
                ),
            ),
        ),
        id="spend file with missing days",
    ),
    pytest.param(
        Case(
            "spend_csv_bad_numbers.yaml",
            (
                Want(
                    20,
                    "baseline.campaigns.instagram.spend.csv",
                    "spend/bad_numbers.csv row 4: 'abc' in column 'instagram' is not a number",
                    PLAIN_NUMBER,
                ),
                Want(
                    20,
                    "baseline.campaigns.instagram.spend.csv",
                    "spend/bad_numbers.csv row 5: '$12' in column 'instagram' is written with "
                    "a currency sign or separators",
                    MONEY_HINT,
                ),
                Want(
                    20,
                    "baseline.campaigns.instagram.spend.csv",
                    "spend/bad_numbers.csv row 7: negative spend -40 in column 'instagram'",
                    "spend is zero or more",
                ),
            ),
        ),
        id="spend file with bad numbers, by row",
    ),
    pytest.param(
        Case(
            "spend_csv_bad_date.yaml",
            (
                Want(
                    19,
                    "baseline.campaigns.instagram.spend.csv",
                    "spend/bad_date.csv row 4: '11/03/2026' is not a date",
                    "write YYYY-MM-DD",
                ),
            ),
        ),
        id="spend file with a bad date",
    ),
    pytest.param(
        Case(
            "spend_csv_missing_column.yaml",
            (
                Want(
                    21,
                    "baseline.campaigns.instagram.spend.column",
                    "spend/daily.csv: no column 'instagam'",
                    "did you mean 'instagram'?",
                ),
            ),
        ),
        id="spend file without the column",
    ),
    pytest.param(
        Case(
            "spend_csv_missing_file.yaml",
            (
                Want(
                    19,
                    "baseline.campaigns.instagram.spend.csv",
                    f"spend file not found: {BAD / 'spend' / 'no_such_file.csv'}",
                    "paths are relative to the scenario file's folder",
                ),
            ),
        ),
        id="missing spend file",
    ),
    pytest.param(
        Case(
            "spend_csv_not_utf8.yaml",
            (
                Want(
                    19,
                    "baseline.campaigns.instagram.spend.csv",
                    "spend/windows_1252.csv is not UTF-8 text",
                    "save it as CSV UTF-8",
                ),
            ),
        ),
        id="spend file not in UTF-8",
    ),
    # personas
    pytest.param(
        Case(
            "segment_unknown_stage.yaml",
            (
                Want(
                    19,
                    "segments.weekend_riders.stages.desir",
                    "segment 'weekend_riders' overrides unknown stage 'desir'",
                    "did you mean 'desire'?",
                ),
            ),
        ),
        id="segment overrides an unknown stage",
    ),
    pytest.param(
        Case(
            "segment_routing_not_one.yaml",
            (
                Want(
                    21,
                    "segments.weekend_riders.stages.desire.next",
                    "routing probabilities in `next` sum to 0.9, not 1",
                    "must add up to 1",
                ),
            ),
        ),
        id="segment routing does not sum to 1",
    ),
    # variants
    pytest.param(
        Case(
            "variant_removes_unknown_campaign.yaml",
            (
                Want(
                    21,
                    "variants.no_display.campaigns.store_dispaly",
                    "removes campaign 'store_dispaly', which the baseline does not have",
                    "did you mean 'store_display'?",
                ),
            ),
        ),
        id="variant removes a campaign the baseline does not have",
    ),
    pytest.param(
        Case(
            "variant_unknown_campaign_key.yaml",
            (
                Want(
                    19,
                    "variants.sale.campaigns.holiday_sale.efects",
                    "unknown key 'efects'",
                    "did you mean 'effects'?",
                ),
            ),
        ),
        id="variant adds a campaign with an unknown key",
    ),
    pytest.param(
        Case(
            "variant_bad_carryover.yaml",
            (
                Want(
                    26,
                    "variants.long_memory.campaigns.instagram.carryover",
                    "less than 1 (got 2)",
                    BELOW_ONE,
                ),
            ),
        ),
        id="variant alters a campaign with a bad value",
    ),
    pytest.param(
        Case(
            "variant_unknown_key.yaml",
            (
                Want(
                    17,
                    "variants.bigger_market.arivals",
                    "unknown key 'arivals'",
                    "did you mean 'arrivals'?",
                ),
            ),
        ),
        id="variant with an unknown key",
    ),
    pytest.param(
        Case(
            "variant_patch_mistakes.yaml",
            (
                Want(
                    17,
                    "variants.late_entry.arrivals.stage",
                    "unknown stage 'desier' in `arrivals.stage`",
                    "did you mean 'desire'?",
                ),
                Want(
                    18,
                    "variants.late_entry.population.initial.awarness",
                    "unknown stage 'awarness' in `population.initial`",
                    "did you mean 'awareness'?",
                ),
                Want(
                    21,
                    "variants.sale.campaigns.holiday_sale",
                    "Input should be a valid dictionary (got 2.2)",
                    "a mapping of `key: value` lines",
                ),
            ),
        ),
        id="variant patches with mistakes",
    ),
    pytest.param(
        Case(
            "variant_or_baseline.yaml",
            (
                Want(
                    21,
                    "baseline.campaigns.newspaper.effects[0].edge",
                    "targets edge 'awareness -> conversion'",
                    "did you mean 'awareness -> interest'?",
                ),
                Want(
                    28,
                    "variants.later_article.campaigns.newspaper.end",
                    "`end` 2026-11-21 is before `start` 2026-11-25",
                    "a window runs from `start` to `end`, both days included",
                ),
                Want(
                    29,
                    "variants.store_only.campaigns.social_ads.effects[0].arrivals",
                    "unknown arrival channel 'social'",
                    "expected one of: store, *",
                ),
                Want(
                    34,
                    "variants.small_town.population",
                    "`initial` puts 1000 people in the funnel, more than `market_size` 500",
                ),
            ),
        ),
        id="each problem under the baseline or the variant that caused it",
    ),
    pytest.param(
        Case(
            "several_campaign_mistakes.yaml",
            (
                Want(
                    17,
                    "segments.weekend_riders.stages.desir",
                    "overrides unknown stage 'desir'",
                    "did you mean 'desire'?",
                ),
                Want(
                    19,
                    "economics.value_per_entry.advocacy",
                    "unknown stage 'advocacy' in `economics.value_per_entry`",
                    "expected one of: awareness, interest, desire, conversion, lost",
                ),
                Want(
                    23,
                    "baseline.campaigns.store_display.effects[0].arrivals",
                    "unknown arrival channel 'stores'",
                    "did you mean 'store'?",
                ),
                Want(
                    25,
                    "baseline.campaigns.newspaper_article.start",
                    "start 2026-10-25 is outside the horizon",
                    "the horizon runs from 2026-11-01 to 2026-12-26",
                ),
                Want(
                    26,
                    "baseline.campaigns.newspaper_article.effects[0].edge",
                    "targets edge 'awareness -> conversion'",
                    "did you mean 'awareness -> interest'?",
                ),
                Want(
                    28,
                    "baseline.campaigns.instagram.spend.total",
                    "greater than or equal to 0 (got -100)",
                    NOT_NEGATIVE,
                ),
                Want(
                    29, "baseline.campaigns.instagram.carryover", "less than 1 (got 1.0)", BELOW_ONE
                ),
                Want(
                    31,
                    "baseline.campaigns.instagram.effects[0].lift",
                    "greater than 0 (got 0)",
                    POSITIVE,
                ),
                Want(
                    32,
                    "baseline.campaigns.instagram.effects[1].edg",
                    "unknown key 'edg'",
                    "did you mean 'edge'?",
                ),
                Want(
                    34,
                    "baseline.campaigns.radio.spend.csv",
                    "spend/missing_days.csv: 3 day(s) of the campaign window have no spend row",
                    "give one row per day",
                ),
                Want(
                    38,
                    "baseline.campaigns.radio.segments[0]",
                    "unknown segment 'weekend_rider'",
                    "did you mean 'weekend_riders'?",
                ),
                Want(
                    44,
                    "variants.holiday_sale.campaigns.holiday_sale.end",
                    "end 2027-01-31 is outside the horizon",
                    "the horizon runs from 2026-11-01 to 2026-12-26",
                ),
                Want(
                    45,
                    "variants.holiday_sale.campaigns.holiday_sale.efects",
                    "unknown key 'efects'",
                    "did you mean 'effects'?",
                ),
                Want(
                    46,
                    "variants.holiday_sale.campaigns.store_display.carryover",
                    "less than 1 (got 2)",
                    BELOW_ONE,
                ),
                Want(
                    47,
                    "variants.holiday_sale.campaigns.radio_spot",
                    "removes campaign 'radio_spot', which the baseline does not have",
                    "did you mean 'radio'?",
                ),
                Want(
                    48,
                    "variants.holiday_sale.arivals",
                    "unknown key 'arivals'",
                    "did you mean 'arrivals'?",
                ),
            ),
        ),
        id="several campaign, persona and variant mistakes in one file",
    ),
    pytest.param(
        Case(
            "variant_named_baseline.yaml",
            (
                Want(
                    19,
                    "variants.baseline",
                    "a variant cannot be named 'baseline': that is the name of the plan every "
                    "variant is compared with",
                    "rename the variant, or put these campaigns under the top-level `baseline:`",
                ),
            ),
        ),
        id="a variant named baseline",
    ),
    pytest.param(
        Case(
            "goal_value_twice.yaml",
            (
                Want(
                    17,
                    "economics.value_per_entry.conversion",
                    "'conversion' is the goal: each entry into it is a conversion, already "
                    "worth `value_per_conversion` (240); this 60 would count every sale twice",
                    TWICE,
                ),
                Want(
                    21,
                    "variants.premium.economics.value_per_entry.conversion",
                    "already worth `value_per_conversion` (240); this 90 would count every "
                    "sale twice",
                    TWICE,
                ),
            ),
        ),
        id="goal valued per conversion and per entry",
    ),
    pytest.param(
        Case(
            "goal_value_in_value_per_entry.yaml",
            (
                Want(
                    13,
                    "economics.value_per_entry.conversion",
                    "'conversion' is the goal: entries into it are conversions, valued by "
                    "`value_per_conversion`, not `value_per_entry`",
                    "put the value in value_per_conversion: `value_per_conversion: 240`",
                ),
            ),
        ),
        id="goal valued per entry",
    ),
    pytest.param(
        Case(
            "nobody_in_funnel.yaml",
            (
                Want(
                    3,
                    "(top level)",
                    "nobody is ever in the funnel: the scenario has no `arrivals` and no "
                    "`population.initial`",
                    ADD_PEOPLE,
                ),
            ),
        ),
        id="no arrivals and no initial population",
    ),
    pytest.param(
        Case(
            "nobody_arrives.yaml",
            (
                Want(
                    13,
                    "arrivals.per_day",
                    "nobody is ever in the funnel: `arrivals.per_day` is 0 and "
                    "`population.initial` puts nobody in it",
                    ADD_PEOPLE,
                ),
            ),
        ),
        id="no arrivals a day and nobody at the start, in any plan",
    ),
    pytest.param(
        Case(
            "one_root_cause.yaml",
            (
                Want(
                    9,
                    "funnel.stages.awareness.next.interest",
                    "(got '35%')",
                    "write a share as a number: 0.35, not 35%",
                ),
                Want(
                    10,
                    "funnel.stages.interest.next.desire",
                    "Input should be a finite number (got nan)",
                    ".nan and .inf are not numbers",
                ),
                Want(11, "funnel.stages.desire.next.conversion", "(got -0.3)", NOT_NEGATIVE),
                Want(12, "funnel.stages.conversion.next.advocacy", "(got 'high')", "use a number"),
            ),
        ),
        id="a bad probability is reported once, not also as no path to the goal",
    ),
    pytest.param(
        Case(
            "spend_csv_semicolons.yaml",
            (
                Want(
                    20,
                    "baseline.campaigns.instagram.spend.csv",
                    "spend/semicolons.csv: the file looks semicolon-separated (its first row "
                    "is 'date;instagram')",
                    "save it as comma-separated CSV",
                ),
            ),
        ),
        id="semicolon-separated spend file, one message",
    ),
    pytest.param(
        Case(
            "spend_csv_formatted_numbers.yaml",
            (
                Want(
                    20,
                    "baseline.campaigns.instagram.spend.csv",
                    "spend/formatted_numbers.csv: 7 rows (2, 3, 4 …) have values in column "
                    "'instagram' written with currency signs or separators, such as '$1,150', "
                    "'$980'",
                    MONEY_HINT,
                ),
            ),
        ),
        id="spend written as money, one message",
    ),
]


@pytest.fixture(autouse=True)
def wide_console(monkeypatch):
    """Problem lines are long; a wide, colourless console keeps each on one line."""
    monkeypatch.setattr(cli, "err", Console(stderr=True, width=1000, color_system=None))


def invoke(*args: str):
    result = runner.invoke(app, list(args))
    assert "Traceback" not in result.output  # stdout and stderr together
    # exit code 1 with an exception would be a crash the runner swallowed
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    return result


def problem_lines(stderr: str) -> list[str]:
    return [line.strip() for line in stderr.splitlines() if line.startswith("  ")]


def assert_reports(result, case: Case) -> None:
    """Exit code 2, the right count in the header, and one line per wanted problem."""
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    n = len(case.wants)
    assert f"{BAD / case.file}: {n} problem{'s' if n != 1 else ''}\n" in result.stderr
    lines = problem_lines(result.stderr)
    assert len(lines) == n, result.stderr  # nothing extra, nothing twice
    for want, line in zip(case.wants, lines):  # in file order
        where = str(BAD / (want.file or case.file)) + (f":{want.line}" if want.line else "")
        head, _, hint = line.partition(" — ")
        assert head.startswith(f"{where} {want.path}: "), line
        assert want.message in head.removeprefix(f"{where} {want.path}: "), line
        assert (want.hint in hint) if want.hint else (hint == ""), line


@pytest.mark.parametrize("case", CASES)
def test_validate_lists_every_problem_with_location_and_hint(case: Case):
    result = invoke("validate", str(BAD / case.file))
    assert_reports(result, case)


@pytest.mark.parametrize("case", CASES)
def test_run_reports_the_same_and_creates_no_output_folder(case: Case, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # so that the default out/<stem> would land here too
    result = invoke("run", str(BAD / case.file), "-o", str(tmp_path / "out"))
    assert_reports(result, case)
    default = invoke("run", str(BAD / case.file), "-q")
    assert default.exit_code == 2
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("case", CASES)
def test_run_leaves_an_existing_output_folder_untouched(case: Case, tmp_path):
    out = tmp_path / "out"
    (out / "plots").mkdir(parents=True)
    (out / "summary.csv").write_bytes(b"metric,mean\nconversions,123\n")
    (out / "plots" / "marker.txt").write_bytes(b"last week's forecast \x00\xff")
    before = snapshot(out)
    result = invoke("run", str(BAD / case.file), "-o", str(out))
    assert_reports(result, case)
    assert snapshot(out) == before


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {
        p.relative_to(folder).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in folder.rglob("*")
        if p.is_file()
    }


def test_every_bad_file_has_a_case_and_there_are_at_least_ten():
    on_disk = {p.name for p in BAD.glob("*.yaml")}
    in_cases = {param.values[0].file for param in CASES}
    assert on_disk == in_cases - {"no_such_scenario.yaml"}
    assert not (BAD / "no_such_scenario.yaml").exists()
    assert len(on_disk) >= 10


def test_the_library_returns_the_same_problems_as_data():
    """``validate_file`` gives what the command line prints: located, each with a hint."""
    several = next(p.values[0] for p in CASES if p.id == "several mistakes in one file")
    problems = validate_file(BAD / several.file)
    assert [(p.line, format_path(p.path)) for p in problems] == [
        (w.line, w.path) for w in several.wants
    ]
    assert all(p.file == str(BAD / several.file) and p.hint for p in problems)


def test_the_good_scenario_passes_the_same_checks():
    """Control: the harness does not fail everything (the shipped scenario is valid)."""
    result = runner.invoke(app, ["validate", str(SCENARIOS / "bike_shop.yaml")])
    assert result.exit_code == 0, result.output
    assert "is valid" in result.stdout and result.stderr == ""


def test_the_real_command_reports_everything_without_a_traceback(tmp_path):
    """End to end through ``python -m funnelsim.cli``, with the real console."""
    scenario = BAD / "several_mistakes.yaml"
    env = {**os.environ, "COLUMNS": "1000", "NO_COLOR": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "funnelsim.cli", "run", str(scenario), "-o", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert "several_mistakes.yaml: 11 problems" in proc.stderr
    assert "several_mistakes.yaml:18 funnel.stages.desire.next: routing" in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_an_engine_override_that_cannot_run_the_scenario_is_refused(tmp_path):
    out = tmp_path / "out"
    scenario = str(BAD.parent.parent / "scenarios" / "sales_team.yaml")  # queues: agents only
    result = runner.invoke(app, ["run", scenario, "--engine", "counts", "-o", str(out)])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert "queues need the agents engine" in result.stderr
    assert "use --engine agents" in result.stderr
    assert not out.exists()
    ok = runner.invoke(app, ["run", scenario, "-o", str(out), "-q", "-n", "2", "--no-plots"])
    assert ok.exit_code == 0, ok.output


# --- warnings: the file runs, but says something a planner may not intend -------------

DOUBTFUL = """\
name: Doubtful inputs
horizon: {start: 2026-11-01, periods: 30}
funnel:
  goal: conversion
  stages:
    awareness:  {dwell_days: 14, next: {interest: 0.35, lost: 0.65}}
    interest:   {dwell_days: 10, next: {desire: 0.40, awareness: 0.20, lost: 0.40}}
    desire:     {dwell_days: 7,  next: {conversion: 0.30, interest: 0.30, lost: 0.40}}
    conversion: {dwell_days: 2,  next: {lost: 1.0}}
arrivals: {per_day: 250}
segments:
  commuters: {share: 0.6}
  families: {share: 0.6}
baseline:
  campaigns:
    sale: {effects: [{edge: desire -> conversion, lift: 25}]}
variants:
  softer:
    campaigns:
      sale:
        effects: [{edge: desire -> conversion, lift: 1.25}, {edge: interest -> desire, lift: 0.05}]
replicates: 4
seed: 1
"""


def succeed(*args: str):
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0 and result.exception is None, result.output
    return result


def warning_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("⚠")]


def test_doubtful_inputs_are_located_warnings_and_the_run_goes_on(tmp_path):
    path = tmp_path / "doubtful.yaml"
    path.write_text(DOUBTFUL)
    checked = succeed("validate", str(path))
    assert checked.stdout.startswith("✓")
    assert warning_lines(checked.stderr) == [
        f"⚠ {path}:11 segments: persona shares sum to 1.2, not 1: each is divided by 1.2, "
        "so arrivals and the initial population split commuters 50.0%, families 50.0% — "
        "make the shares add up to 1 so that the file says what runs",
        f"⚠ {path}:16 baseline.campaigns.sale.effects[0].lift: lift 25 multiplies the rate "
        "by 25 at full pressure — a lift is a multiplier: 1.5 is +50%; if you meant +25%, "
        "write 1.25",
        f"⚠ {path}:21 variants.softer.campaigns.sale.effects[1].lift: lift 0.05 divides the "
        "rate by 20 at full pressure — a lift is a multiplier: 0.6 is −40%; if you meant "
        "−5%, write 0.95",
    ]
    out = tmp_path / "out"
    ran = succeed("run", str(path), "-o", str(out), "-q", "--no-plots")
    assert warning_lines(ran.stderr) == warning_lines(checked.stderr)
    assert (out / "summary.csv").is_file()


def test_plausible_inputs_give_no_warning(tmp_path):
    """Control: lifts of 10 and 0.1 and shares that sum to 1 are taken as meant."""
    path = tmp_path / "fine.yaml"
    path.write_text(
        DOUBTFUL.replace("lift: 25", "lift: 10")
        .replace("lift: 0.05", "lift: 0.1")
        .replace("families: {share: 0.6}", "families: {share: 0.4}")
    )
    checked = succeed("validate", str(path))
    assert checked.stderr == "", checked.output


def test_a_run_too_big_for_the_machine_is_warned_about_with_the_largest_that_fits(
    tmp_path, monkeypatch
):
    """bike_shop.yaml: 90 days, 6 stages with lost, 4 arrival cells, one plan: 50,448
    bytes per replicate, times 3 = 151,344 (see estimate_result_bytes)."""
    scenario = BAD.parent.parent / "scenarios" / "bike_shop.yaml"
    monkeypatch.setattr(checks, "physical_memory_bytes", lambda: 10_000_000)
    checked = succeed("validate", str(scenario))
    assert warning_lines(checked.stderr) == [
        f"⚠ {scenario}:19 replicates: 500 replicates of 1 plan need about 75.7 MB of memory "
        "(an estimate), more than this machine's 10 MB — use at most 66 replicates "
        "(`--replicates 66`), or fewer periods or plans"
    ]
    out = tmp_path / "out"
    small = succeed("run", str(scenario), "-n", "20", "-o", str(out), "-q", "--no-plots")
    assert warning_lines(small.stderr) == [], small.output
    big = succeed("run", str(scenario), "-n", "80", "-o", str(out), "-q", "--no-plots")
    assert warning_lines(big.stderr) == [
        f"⚠ {scenario}:19 replicates: 80 replicates of 1 plan need about 12.1 MB of memory "
        "(an estimate), more than this machine's 10 MB — use at most 66 replicates "
        "(`--replicates 66`), or fewer periods or plans"
    ]


def test_the_memory_estimate_is_the_result_arrays_times_the_safety_factor():
    """Checked against the arrays a real run returns, for a scenario with four plans."""
    scenario = load_scenario(BAD.parent.parent / "scenarios" / "bike_shop_holiday.yaml")
    result = run(scenario, replicates=3, seed=1)
    arrays = ("initial", "occupancy", "flows", "arrivals", "entries")
    size = sum(result.dataset[name].size for name in arrays) * 8
    assert checks.estimate_result_bytes(scenario, 3, "counts") == MEMORY_SAFETY_FACTOR * size
    assert (
        checks.estimate_result_bytes(scenario, 3000, "counts") == 1000 * MEMORY_SAFETY_FACTOR * size
    )


def test_when_the_machine_does_not_say_its_memory_8_gb_is_assumed(monkeypatch):
    scenario = load_scenario(BAD.parent.parent / "scenarios" / "bike_shop.yaml")
    monkeypatch.setattr(checks.os, "sysconf", _no_sysconf)
    assert checks.physical_memory_bytes() is None
    assert checks.memory_problem(scenario, 500, "counts") is None
    problem = checks.memory_problem(scenario, 100_000, "counts")
    assert problem is not None and problem.path == ("replicates",)
    assert "more than 8.59 GB (assumed: this machine's memory could not be read)" in problem.message
    assert "use at most 56,757 replicates" in problem.hint


def _no_sysconf(name: str) -> int:
    raise ValueError(f"unsupported configuration name: {name}")


def test_a_variant_that_adds_people_makes_a_scenario_without_them_valid(tmp_path):
    """Decision: the check is on the scenario, not on each plan. A launch scenario whose
    baseline has nobody ("we do nothing") and whose variant brings arrivals is valid."""
    path = tmp_path / "launch.yaml"
    text = (BAD / "nobody_in_funnel.yaml").read_text()
    path.write_text(text + "variants:\n  launch:\n    arrivals: {per_day: 100}\n")
    succeed("validate", str(path))
    nobody = tmp_path / "nobody.yaml"
    nobody.write_text(text + "variants:\n  launch:\n    population: {market_size: 5000}\n")
    assert [p.message[:29] for p in validate_file(nobody)] == ["nobody is ever in the funnel:"]


def test_a_percentage_gets_a_hint_that_fits_the_key(tmp_path):
    """`35%` as a probability is 0.35; `30%` as a lift means +30%, a multiplier of 1.3."""
    path = tmp_path / "percent.yaml"
    path.write_text((BAD / "one_root_cause.yaml").read_text().replace("lift: 1.3", "lift: 30%"))
    hints = {format_path(p.path): p.hint for p in validate_file(path)}
    assert hints["funnel.stages.awareness.next.interest"] == (
        "write a share as a number: 0.35, not 35%"
    )
    assert hints["baseline.campaigns.reviews.effects[0].lift"] == (
        "a lift is a multiplier: for +30% write 1.3"
    )
    assert len(hints) == 5  # and still nothing about edges or paths


def test_quoted_numbers_and_trailing_commas_are_read_not_crashed_on(tmp_path):
    """`"5000"` in YAML and a spreadsheet's trailing comma in a spend CSV are fine."""
    (tmp_path / "spend.csv").write_text(
        "date,instagram,\n" + "".join(f"2026-11-{d:02d},100,\n" for d in range(1, 31)),
        encoding="utf-8",
    )
    (tmp_path / "quoted.yaml").write_text(
        """name: quoted
horizon: {start: 2026-11-01, periods: 30, step: day}
funnel:
  goal: conversion
  stages:
    awareness:  {dwell_days: 14, next: {conversion: 0.3, lost: 0.7}}
    conversion: {dwell_days: 2, next: {lost: 1.0}}
population: {initial: {awareness: "5000"}}
arrivals: {per_day: "300"}
baseline:
  campaigns:
    instagram:
      spend: {csv: spend.csv}
      half_saturation: 100
      effects: [{edge: awareness -> conversion, lift: 1.5}]
""",
        encoding="utf-8",
    )
    result = runner.invoke(app, ["validate", str(tmp_path / "quoted.yaml")])
    assert result.exit_code == 0 and result.exception is None, result.output
    assert "valid:" in result.output
