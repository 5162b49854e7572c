"""Simulated dashboard histories (funnelsim.data.synthetic) and the shipped example
built from them (scenarios/data)."""

from __future__ import annotations

import doctest
import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from numpy.testing import assert_allclose
from scipy.stats import norm

import funnelsim.data.synthetic as synthetic
from funnelsim.campaigns import Campaign
from funnelsim.data.synthetic import (
    flighted_spend,
    random_flights,
    simulate_counts,
    steady_state,
    true_contributions,
)
from funnelsim.funnel import Funnel

from .conftest import SCENARIOS

EXAMPLE = SCENARIOS / "data"
PERIODS = 12

# a small funnel with a way back (b → a) and a slow last stage; tv lifts arrivals with
# carryover, promo lifts b → c without; the baseline has a trend and a season
FUNNEL = Funnel.from_routing(
    {"a": 8.0, "b": 10.0, "c": 40.0},
    {"a": {"b": 0.4, "lost": 0.6}, "b": {"c": 0.3, "a": 0.2, "lost": 0.5}, "c": {"lost": 1.0}},
    goal="c",
)
HISTORY = dict(
    start="2024-03-04",
    periods=PERIODS,
    arrivals_per_day=40.0,
    trend=0.2,
    yearly=0.3,
    peak_day=100,
    burn_in=6,
)


def campaigns() -> list[Campaign]:
    days = PERIODS * 7
    return [
        Campaign(
            "tv",
            0,
            days - 1,
            days,
            spend=flighted_spend(PERIODS, [(2, 4, 100.0)]),
            carryover=0.8,
            half_saturation=300.0,
            arrival_lifts={"*": 1.5},
        ),
        Campaign(
            "promo",
            0,
            days - 1,
            days,
            spend=flighted_spend(PERIODS, [(5, 3, 50.0), (9, 1, 20.0)]),
            half_saturation=50.0,
            edge_lifts={("b", "c"): 2.0},
        ),
    ]


def test_docstring_examples():
    result = doctest.testmod(synthetic, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0


def test_expected_engine_is_the_mean_of_count_engine_replicates():
    """Every count (entries of each stage, occupancy of c, each week) averaged over 400
    seeded count-engine histories equals the expected engine's within Monte Carlo error:
    |z| below the two-sided Bonferroni bound for a 0.1% family-wise false alarm."""
    expected, _ = simulate_counts(
        FUNNEL, campaigns(), **HISTORY, occupancy=["c"], engine="expected"
    )
    replicates = np.array(
        [
            simulate_counts(FUNNEL, campaigns(), **HISTORY, occupancy=["c"], seed=seed)[0]["count"]
            for seed in range(400)
        ]
    )
    mean = replicates.mean(axis=0)
    se = replicates.std(axis=0, ddof=1) / np.sqrt(len(replicates))
    assert se.min() > 0.1  # every cell is random: the check has something to check
    bound = norm.ppf(1 - 0.001 / (2 * mean.size))
    z = (mean - expected["count"].to_numpy()) / se
    assert np.abs(z).max() < bound, expected.assign(z=z).loc[np.abs(z) >= bound]
    # and it has the power to see a campaign missing from the mean (promo's weeks)
    without_promo, _ = simulate_counts(
        FUNNEL, campaigns()[:1], **HISTORY, occupancy=["c"], engine="expected"
    )
    assert np.abs((mean - without_promo["count"].to_numpy()) / se).max() > 2 * bound


def test_table_layout_and_spend_sums():
    counts, spend = simulate_counts(FUNNEL, campaigns(), **HISTORY, occupancy=["c"], seed=3)
    assert list(counts.columns) == ["period", "stage", "count", "kind"]
    assert counts["count"].dtype == np.int64 and (counts["count"] >= 0).all()
    weeks = pd.date_range("2024-03-04", periods=PERIODS, freq="7D").strftime("%Y-%m-%d")
    first = counts[counts["period"] == weeks[0]]
    assert list(zip(first["stage"], first["kind"])) == [
        ("a", "entries"),
        ("b", "entries"),
        ("c", "entries"),
        ("c", "occupancy"),
    ]
    assert list(counts["period"].unique()) == list(weeks)
    assert list(spend.columns) == ["date", "tv", "promo"]
    assert list(spend["date"]) == list(weeks)
    for campaign in campaigns():
        assert campaign.spend is not None
        assert_allclose(spend[campaign.name], campaign.spend.reshape(PERIODS, 7).sum(axis=1))
        assert spend[campaign.name].sum() == pytest.approx(campaign.spend.sum())
    assert spend["promo"].tolist() == [0] * 5 + [350] * 3 + [0, 140, 0, 0]


def test_a_seed_reproduces_a_history():
    def run(seed: int | None, engine: str = "counts") -> pd.DataFrame:
        return simulate_counts(FUNNEL, campaigns(), **HISTORY, seed=seed, engine=engine)[0]

    pd.testing.assert_frame_equal(run(11), run(11))
    assert not run(11)["count"].equals(run(12)["count"])
    pd.testing.assert_frame_equal(run(1, "expected"), run(2, "expected"))
    assert run(1, "expected")["count"].dtype == np.float64


@pytest.mark.parametrize("period_days", [1, 7], ids=["daily", "weekly"])
def test_arrivals_follow_trend_and_season(period_days):
    """One stage, no way back: its entries are the arrivals, the formula summed by day."""
    one = Funnel.from_rates({"visit": {"lost": 0.05}}, goal="visit")
    periods = 30 if period_days == 1 else 60
    counts, _ = simulate_counts(
        one,
        [],
        start="2025-06-02",
        periods=periods,
        period_days=period_days,
        arrivals_per_day=500.0,
        trend=0.4,
        yearly=0.25,
        peak_day=330,
        engine="expected",
    )
    days = pd.date_range("2025-06-02", periods=periods * period_days)
    t = np.arange(len(days)) / len(days)
    per_day = 500.0 * np.exp(0.4 * t + 0.25 * np.cos(2 * np.pi * (days.day_of_year - 330) / 365.25))
    assert_allclose(
        counts["count"], per_day.to_numpy().reshape(periods, period_days).sum(axis=1), rtol=1e-12
    )


def test_the_history_starts_at_the_funnels_steady_state():
    """Flat arrivals, no campaigns: occupancy does not drift from the start (no transient
    from an empty funnel), and it is the engine's steady state."""
    counts, _ = simulate_counts(
        FUNNEL,
        [],
        start="2024-03-04",
        periods=20,
        arrivals_per_day=40.0,
        occupancy=["a", "b", "c"],
        engine="expected",
    )
    held = counts[counts["kind"] == "occupancy"].pivot(index="period", columns="stage")["count"]
    steady = steady_state(FUNNEL, 40.0)
    for stage in "abc":
        # initial occupancy is rounded to whole people: off by ≤ 0.5 at most, decaying
        assert_allclose(held[stage], steady[stage], atol=0.5)
        assert abs(held[stage].iloc[0] - held[stage].iloc[-1]) < 0.5


def test_contribution_of_an_arrival_lift_has_a_closed_form():
    """Constant spend s, no carryover: pressure s/(s + h) every day of the history, so the
    campaign adds baseline · (lift^pressure − 1) arrivals each day; in a one-stage
    funnel those are its entries."""
    one = Funnel.from_rates({"visit": {"lost": 0.05}}, goal="visit")
    periods, s, h, lift = 10, 300.0, 100.0, 1.6
    ad = Campaign(
        "ad",
        0,
        periods * 7 - 1,
        periods * 7,
        spend=np.full(periods * 7, s),
        half_saturation=h,
        arrival_lifts={"*": lift},
    )
    got = true_contributions(
        one, [ad], start="2025-01-06", periods=periods, arrivals_per_day=200.0, trend=0.3
    )
    t = np.arange(periods * 7) / (periods * 7)
    baseline = 200.0 * np.exp(0.3 * t)
    assert got["ad"] == pytest.approx(float(np.sum(baseline * (lift ** (s / (s + h)) - 1))))


def test_contributions_are_removal_effects_on_the_tables():
    """A campaign's contribution to a stage is the history's entries into it (as the
    expected table says) minus those of the history without that campaign."""
    everything, _ = simulate_counts(FUNNEL, campaigns(), **HISTORY, engine="expected")
    for stage in "abc":
        got = true_contributions(FUNNEL, campaigns(), **HISTORY, stage=stage)
        for c in campaigns():
            others = [o for o in campaigns() if o.name != c.name]
            without, _ = simulate_counts(FUNNEL, others, **HISTORY, engine="expected")
            rows = everything["stage"] == stage
            truth = everything.loc[rows, "count"].sum() - without.loc[rows, "count"].sum()
            assert got[c.name] == pytest.approx(truth, rel=1e-12)
    # promo lifts b → c: more people reach c (the goal), fewer drift back from b to a
    assert true_contributions(FUNNEL, campaigns(), **HISTORY)["promo"] > 0.0
    assert true_contributions(FUNNEL, campaigns(), **HISTORY, stage="a")["promo"] < 0.0


def test_random_flights_are_on_off_bursts():
    spend = random_flights(104, levels=(1000.0, 5000.0), rng=7).reshape(104, 7)
    weekly = spend[:, 0]
    assert (spend == weekly[:, None]).all()  # constant within each week
    on = weekly > 0
    assert 0.2 < on.mean() < 0.9
    assert ((weekly[on] >= 1000.0) & (weekly[on] <= 5000.0)).all()
    bursts = np.diff(np.r_[0, on.astype(int), 0])
    lengths = np.nonzero(bursts == -1)[0] - np.nonzero(bursts == 1)[0]
    assert lengths[:-1].min() >= 3 and lengths.max() <= 8  # the last may be cut off
    assert_allclose(random_flights(104, levels=(1.0, 2.0), rng=7) > 0, spend.ravel() > 0)


def test_misuse_is_refused():
    with pytest.raises(ValueError, match="occupancy names stages not in the funnel: d"):
        simulate_counts(FUNNEL, [], **HISTORY, occupancy=["d"])
    short = Campaign("tv", 0, 9, 10, spend=np.ones(10), half_saturation=1.0)
    with pytest.raises(ValueError, match="spend for 10 days; the history has 84"):
        simulate_counts(FUNNEL, [short], **HISTORY)
    with pytest.raises(ValueError, match="engine must be 'counts' or 'expected'"):
        simulate_counts(FUNNEL, [], **HISTORY, engine="agents")
    with pytest.raises(ValueError, match="not a stage"):
        true_contributions(FUNNEL, campaigns(), **HISTORY, stage="lost")


# ------------------------------------------------------------------ the shipped example
def _make_counts():
    spec = importlib.util.spec_from_file_location("make_counts", EXAMPLE / "make_counts.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_shipped_example_is_what_make_counts_writes(tmp_path: Path, monkeypatch):
    """The files in scenarios/data are up to date: make_counts.py writes them again,
    byte for byte."""
    make = _make_counts()
    monkeypatch.setattr(make, "HERE", tmp_path)
    make.main()
    for name in ("counts.csv", "spend.csv", "truth.yaml"):
        assert (tmp_path / name).read_bytes() == (EXAMPLE / name).read_bytes(), name


def test_shipped_example_looks_like_a_dashboard():
    counts = pd.read_csv(EXAMPLE / "counts.csv", parse_dates=["period"])
    spend = pd.read_csv(EXAMPLE / "spend.csv", parse_dates=["date"])
    truth = yaml.safe_load((EXAMPLE / "truth.yaml").read_text())
    priors = yaml.safe_load((EXAMPLE / "priors.yaml").read_text())
    guess = yaml.safe_load((EXAMPLE / "funnel.yaml").read_text())["funnel"]

    weeks = pd.date_range("2024-01-01", periods=104, freq="7D")
    assert weeks[0].day_name() == "Monday"
    assert (np.sort(counts["period"].unique()) == weeks.to_numpy()).all()
    series = set(zip(counts["stage"], counts["kind"]))
    stages = ["awareness", "interest", "desire", "conversion"]
    assert series == {(s, "entries") for s in stages} | {("conversion", "occupancy")}
    assert (counts["count"] >= 0).all() and (counts["count"] % 1 == 0).all()
    assert (spend["date"] == weeks).all()
    assert list(spend.columns[1:]) == list(priors["campaigns"]) == ["tv", "social", "coupons"]
    for name in priors["campaigns"]:
        on = spend[name] > 0
        assert 0.1 < on.mean() < 0.7, name  # flighted: on and off
        assert spend.loc[on, name].nunique() >= 2, name  # at different levels
    # tv runs in both Novembers, when arrivals peak anyway
    november = spend["date"].dt.month == 11
    assert (spend.loc[november, "tv"] > 0).mean() > 0.75

    assert guess["goal"] == "conversion" and list(guess["stages"]) == stages
    assert "awareness" in guess["stages"]["interest"]["next"]  # the way back
    assert all("lost" in stage["next"] for stage in guess["stages"].values())
    assert guess["stages"] != truth["funnel"]["stages"]  # guesses, not the truth
    assert truth["simulation"]["dt_days"] == 1.0
    conversions = counts.query("stage == 'conversion' and kind == 'entries'")["count"].sum()
    contribution = truth["contributions"]["conversion"]
    assert 0.02 * conversions < min(contribution.values())  # every campaign matters
    assert sum(contribution.values()) < 0.5 * conversions  # the baseline carries the most


def test_shipped_truth_keeps_every_exit_rate_below_a_tenth_per_day():
    """Campaign lifts included (at the highest pressure the spend reaches), so the
    engine's one-day steps move people at most once a day."""
    make = _make_counts()
    truth = Funnel.from_routing(make.DWELL, make.NEXT, goal="conversion")
    totals = {s: truth.rates[truth.index(s)].sum() for s in make.DWELL}
    for name in make.FLIGHTS:
        c = make.campaign(name)
        for (src, dst), lift in c.edge_lifts.items():
            lifted = truth.rate(src, dst) * (lift ** c.pressure().max() - 1)
            totals[src] += lifted
    assert max(totals.values()) <= 0.1
