"""report.html reads as a page a planner can hand to a manager."""

from __future__ import annotations

import re
from html import escape

import pytest

from funnelsim.report.html import PLOT_CAPTIONS, write_report
from funnelsim.scenario import load_scenario, run

from .conftest import SCENARIOS

PNG = bytes.fromhex("89504e470d0a1a0a")  # the PNG signature is enough to inline


@pytest.fixture(scope="module")
def holiday():
    return run(load_scenario(SCENARIOS / "bike_shop_holiday.yaml"), replicates=8, seed=5)


def page(result, folder, plots=()) -> str:
    paths = []
    for name in plots:
        path = folder / f"{name}.png"
        path.write_bytes(PNG)
        paths.append(path)
    return write_report(result, folder, paths).read_text(encoding="utf-8")


def visible(html: str) -> str:
    """The page's text as a reader sees it (tags and the inlined images removed)."""
    return re.sub(r"<[^>]+>", " ", re.sub(r"<style>.*?</style>", "", html, flags=re.S))


def test_the_scenario_is_described_with_money_in_its_currency(holiday, tmp_path):
    html = page(holiday, tmp_path)
    text = visible(html)
    assert "Ninety days from November 1st." in text  # the scenario's description
    assert "Money in USD." in text
    profit = holiday.comparison().set_index("scenario").loc["full_plan", "profit"]
    assert f"${profit:,.0f}" in text
    assert "+ Instagram, sale and review requests" in text  # plans by their labels
    assert "full_plan) is almost certainly the most profitable plan" in text


def test_metric_names_are_readable_and_shares_are_percentages(holiday, tmp_path):
    text = visible(page(holiday, tmp_path))
    for snake in ("conversion_rate", "prob_best_profit", "uplift_", "incremental_roi", "cac"):
        assert snake not in text
    assert "conversion rate" in text and "cost per conversion" in text
    summary = holiday.summary().set_index(["scenario", "metric"])
    rate = summary.loc[("baseline", "conversion_rate"), "mean"]
    assert f"{100 * rate:.1f}%" in text
    best = summary.loc[("full_plan", "prob_best_profit"), "mean"]
    assert f"{best:.0%}" in text
    # each number with its 5–95% range below it
    p05, p95 = summary.loc[("baseline", "conversions"), ["p05", "p95"]]
    assert f"{p05:,.0f} – {p95:,.0f}" in text


def test_every_plot_has_a_heading_and_a_caption(holiday, tmp_path):
    names = ["funnel", "occupancy", "cumulative", "dropoff", "uplift", "pressure"]
    html = page(holiday, tmp_path, names)
    assert html.count("<figcaption>") == 6 and html.count("data:image/png;base64,") == 6
    for name in names:
        heading, caption = PLOT_CAPTIONS[name]
        assert f"<h2>{escape(heading)}</h2>" in html and escape(caption) in html
    assert "http" not in html and "<script" not in html  # offline, self-contained


def test_no_economics_no_money_rows(tmp_path):
    result = run(load_scenario(SCENARIOS / "bike_shop.yaml"), replicates=6, seed=1)
    text = visible(page(result, tmp_path))
    assert "Ninety days of the bike-shop funnel" in text
    assert "No economics were given" in text
    for money in ("revenue", "profit", "spend", "cost per conversion", "$", "return on"):
        assert money not in text
    assert "conversion rate" in text and "share of conversions" in text


def test_a_deterministic_run_shows_point_values(tmp_path):
    result = run(load_scenario(SCENARIOS / "bike_shop_holiday.yaml"), engine="expected")
    html = page(result, tmp_path)
    text = visible(html)
    assert "class='range'" not in html and "chance of" not in text
    assert "deterministic expected values; run with the counts engine for uncertainty" in text
