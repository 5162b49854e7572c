"""The headline table a planner reads in the terminal: every number whole, at 80 columns."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from funnelsim.report.console import PlanProgress, Run, print_comparison, print_headline
from funnelsim.report.format import compact, whole
from funnelsim.scenario import load_scenario, run

from .conftest import SCENARIOS

SHIPPED = sorted(p.name for p in SCENARIOS.glob("*.yaml"))
NUMBERS = ("conversions", "profit", "uplift_conversions", "uplift_profit")


def render(rows: pd.DataFrame, info: Run, width: int = 80) -> str:
    console = Console(width=width, record=True, color_system=None)
    print_comparison(console, rows, info)
    return console.export_text()


def tokens(text: str) -> set[str]:
    """Words of the rendered text, split at spaces and at the en dash of ranges (the
    minus sign − is another character and stays with its number)."""
    return set(re.split(r"[\s–():;]+", text))


def assert_whole(text: str, rows: pd.DataFrame, point: bool, width: int = 80) -> None:
    """Every number of the comparison appears whole; nothing is cut or ellipsised."""
    assert "…" not in text and "..." not in text
    assert max(len(line) for line in text.splitlines()) <= width
    words = tokens(text)
    for k, row in rows.iterrows():
        assert str(row.scenario) in words
        for col in NUMBERS:
            if col.startswith("uplift") and k == 0:
                continue
            signed = col.startswith("uplift")
            stats = ("",) if point else ("", "_p05", "_p95")
            for stat in stats:
                value = row[col + stat]
                shown = {compact(value, signed), whole(value, signed)}  # 1.25M or 1,245,300
                assert shown & words, (col + stat, text)
        if not point:
            for col in ("prob_beats_baseline", "prob_best_profit"):
                if col in row and row[col] == row[col]:
                    assert f"{row[col]:.0%}" in words


def synthetic(names: list[str], scale: float, seed: int = 1) -> pd.DataFrame:
    """A comparison frame like :meth:`SimulationResult.comparison` gives, with big and
    negative numbers."""
    rng = np.random.default_rng(seed)
    rows = []
    for k, name in enumerate(names):
        row: dict[str, object] = {"scenario": name, "label": f"plan number {k} " * 3}
        for col in ("conversions", "revenue", "spend", "profit"):
            mean = scale * rng.uniform(0.5, 2.0)
            row |= {col: mean, f"{col}_p05": 0.9 * mean, f"{col}_p95": 1.1 * mean}
        if k:
            for col in ("uplift_conversions", "uplift_profit"):
                mean = scale * rng.uniform(-0.5, 0.5)
                row |= {col: mean, f"{col}_p05": mean - 0.1 * scale, f"{col}_p95": mean + scale}
            row["prob_beats_baseline"] = rng.uniform()
        row["prob_best_profit"] = 1 / len(names)
        rows.append(row)
    return pd.DataFrame(rows)


LONG = [
    "baseline",
    "instagram_lifestyle_posts_all_winter",
    "holiday_sale_and_review_requests",
    "everything_at_once_with_a_much_bigger_budget",
    "x",
    "win_back_email_sequence_for_churned_customers",
]


@pytest.mark.parametrize("scale", [7.0, 9_876.0, 123_456_789.0, 4.5e12], ids=str)
@pytest.mark.parametrize("deterministic", [False, True], ids=["replicates", "expected"])
def test_six_plans_with_long_names_and_big_numbers_fit_80_columns(scale, deterministic):
    rows = synthetic(LONG, scale)
    info = Run("A planner's very long scenario title " * 3, 500, deterministic, "EUR")
    text = render(rows, info)
    assert_whole(text, rows, point=deterministic)
    if deterministic:
        assert "P(best)" not in text and "5–95%" not in text
        assert "run with the counts engine for uncertainty" in re.sub(r"\s+", " ", text)


def test_short_names_sit_side_by_side_and_long_ones_stack():
    short = synthetic(["baseline", "instagram", "holiday_sale", "full_plan"], 1_000.0)
    wide = render(short, Run("t", 500))
    header = next(line for line in wide.splitlines() if line.startswith("plan"))
    assert "Δ profit" in header and "P(best)" in header  # one row per plan
    stacked = render(synthetic(LONG, 1_000.0), Run("t", 500))
    assert not any(line.startswith("plan") for line in stacked.splitlines())
    assert "  Δ sales" in stacked  # a block per plan, a row per number
    # the same frame side by side when the terminal is wide enough
    assert "Δ profit  P(Δ>0)" in render(synthetic(LONG, 1_000.0), Run("t", 500), width=160)


def test_no_money_no_profit_columns_and_the_winner_by_sales():
    rows = synthetic(["baseline", "more_ads"], 100.0)
    rows[["revenue", "spend", "profit", "uplift_profit"]] = 0.0
    text = render(rows, Run("t", 200))
    assert "profit" not in text and "P(best)" not in text
    winner = rows.loc[rows["conversions"].idxmax(), "scenario"]
    assert f"{winner} has the most sales on average." in text


@pytest.fixture(scope="module", params=SHIPPED)
def shipped(request):
    spec = load_scenario(SCENARIOS / request.param)
    return run(spec, replicates=4, seed=3)


def test_every_shipped_scenario_fits_80_columns_whole(shipped):
    console = Console(width=80, record=True, color_system=None)
    print_headline(shipped, console)
    text = console.export_text()
    if shipped.variants:
        assert_whole(text, shipped.comparison(), point=False)
    else:
        assert "…" not in text and max(map(len, text.splitlines())) <= 80
        summary = shipped.summary().set_index("metric")
        for stat in ("mean", "p05", "p95"):
            assert whole(summary.loc["conversions", stat]) in tokens(text)
        assert "conversion rate" in text and "5–95% range" in text


@pytest.mark.parametrize("name", ["bike_shop.yaml", "bike_shop_holiday.yaml"])
def test_expected_engine_shows_point_values(name):
    result = run(load_scenario(SCENARIOS / name), engine="expected")
    console = Console(width=80, record=True, color_system=None)
    print_headline(result, console)
    text = console.export_text()
    assert "5–95%" not in text and "replicates" not in text
    if result.variants:
        assert_whole(text, result.comparison(), point=True)
        assert "P(" not in text
        flat = re.sub(r"\s+", " ", text)
        assert "full_plan is the most profitable plan (deterministic expected values; " in flat
    else:
        conversions = result.summary().set_index("metric").loc["conversions", "mean"]
        assert whole(conversions) in tokens(text) and "value" in text


def test_progress_counts_replicates_per_plan():
    console = Console(width=120, record=True, color_system=None)
    days = 90.0
    with PlanProgress(console, "Holiday", ["baseline", "sale"], 3, days) as bar:
        for k, name in enumerate(["baseline", "sale"]):
            bar.plan(k, name)
            for _ in range(3 * 9):  # the agent engine reports 10-day periods
                bar.advance(days / 9)
        bar.done()
    text = console.export_text()
    assert "plan 1/2 baseline" in text and "plan 2/2 sale" in text
    assert text.count("3/3 replicates") == 2 and "2/2 plans" in text
    assert "6/3" not in text and "540" not in text  # not plans × replicates, not days


def test_progress_of_a_single_plan_is_one_row():
    console = Console(width=120, record=True, color_system=None)
    with PlanProgress(console, "Bike shop", ["baseline"], 5) as bar:
        bar.plan(0, "baseline")
        for _ in range(5):
            bar.advance(1)
    text = console.export_text()
    assert "Bike shop" in text and "5/5 replicates" in text and "plans" not in text


def test_compact_numbers_round_over_to_the_next_unit():
    import doctest

    import funnelsim.report.format as fmt

    assert doctest.testmod(fmt).failed == 0
    cases = {9_999.4: "9,999", 9_999.6: "10k", 999_499: "999k", 999_600: "1.00M"}
    cases |= {99.96e6: "100M", 999.6e6: "1.00B", 3.4e9: "3.40B", 2e12: "2T", 0.4: "0"}
    assert {v: compact(v) for v in cases} == cases
    assert compact(-45_600, signed=True) == "−46k" and compact(-0.3, signed=True) == "0"
    assert whole(1_245_300.4, signed=True) == "+1,245,300" and whole(float("nan")) == "–"


def test_the_plan_named_best_is_the_one_most_often_most_profitable():
    rows = synthetic(["baseline", "trial", "win_back"], 1_000.0)
    rows["profit"] = [1_000.0, 2_000.0, 1_990.0]  # trial has the higher mean …
    rows["prob_best_profit"] = [0.0, 0.4, 0.6]  # … win_back wins more often
    flat = " ".join(render(rows, Run("t", 10)).split())
    assert "win_back is possibly the most profitable plan: the best in 60% of 10" in flat
    assert "too close to call: trial is the best in 40%" in flat


def test_repeat_purchases_are_conversions_per_person_not_a_rate_over_100_percent():
    """A funnel whose goal repeats converts each person more than once: the row says
    conversions per person (2.59), not a "conversion rate" of 259%."""
    from funnelsim.report.console import print_totals

    rows = [("conversions", 2467.0, 2310.0, 2641.0), ("conversion_rate", 2.59, 2.43, 2.77)]
    summary = pd.DataFrame(rows, columns=["metric", "mean", "p05", "p95"])
    console = Console(width=80, record=True, color_system=None)
    print_totals(console, summary, Run("shop", 200))
    text = " ".join(console.export_text().split())
    assert "conversions per person │ 2.59 │ 2.43 – 2.77" in text and "259" not in text
    once = summary.assign(mean=[1103.0, 0.034], p05=[1050.0, 0.033], p95=[1157.0, 0.036])
    console = Console(width=80, record=True, color_system=None)
    print_totals(console, once, Run("shop", 200))
    assert "conversion rate │ 3.4% │ 3.3% – 3.6%" in " ".join(console.export_text().split())
