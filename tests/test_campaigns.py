"""Campaign kernels against hand-computed values, and how campaigns modify rates."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose

from funnelsim.campaigns import (
    Campaign,
    geometric_adstock,
    hill_saturation,
    rate_multipliers,
    spread_spend,
    window_mask,
)
from funnelsim.dynamics import compile_model
from funnelsim.funnel import step_probabilities


def test_geometric_adstock_by_hand():
    # x0 = 100; x1 = 0 + 0.6·100 = 60; x2 = 10 + 0.6·60 = 46; x3 = 0 + 0.6·46 = 27.6
    assert_allclose(
        geometric_adstock(np.array([100.0, 0.0, 10.0, 0.0]), 0.6), [100.0, 60.0, 46.0, 27.6]
    )
    assert_allclose(geometric_adstock(np.array([5.0, 7.0]), 0.0), [5.0, 7.0])
    with pytest.raises(ValueError):
        geometric_adstock(np.ones(3), 1.0)


def test_hill_saturation_by_hand():
    # h = 200, k = 1: 50/(50+200) = 0.2; 200 → 0.5; 600 → 0.75
    assert_allclose(
        hill_saturation(np.array([0.0, 50.0, 200.0, 600.0]), 200.0), [0.0, 0.2, 0.5, 0.75]
    )
    # k = 3: (2)^3/(1+8) = 8/9
    assert hill_saturation(np.array([400.0]), 200.0, 3.0)[0] == pytest.approx(8 / 9)
    assert np.all(hill_saturation(np.array([1e12]), 1.0) < 1.0)


def test_windows_and_spend_spreading():
    assert window_mask(5, 1, 3).tolist() == [False, True, True, True, False]
    assert spread_spend(6, 2, 4, total=300.0).tolist() == [0, 0, 100, 100, 100, 0]
    assert spread_spend(4, 0, 1, per_day=25.0).tolist() == [25, 25, 0, 0]


def test_campaign_pressure_and_costs():
    on = Campaign(
        "sale",
        start=2,
        end=3,
        n_days=6,
        edge_lifts={("desire", "conversion"): 2.0},
        cost_per_day=10.0,
        fixed_cost=100.0,
    )
    assert on.pressure().tolist() == [0, 0, 1, 1, 0, 0]
    assert on.daily_cost().tolist() == [0, 0, 110, 10, 0, 0]
    spend = spread_spend(6, 0, 1, per_day=100.0)
    ads = Campaign(
        "ads", start=0, end=1, n_days=6, spend=spend, carryover=0.5, half_saturation=100.0
    )
    # adstock 100, 150, 75, 37.5 → hill 0.5, 0.6, 75/175, 37.5/137.5
    assert_allclose(ads.pressure()[:4], [0.5, 0.6, 75 / 175, 37.5 / 137.5])
    assert ads.total_cost() == pytest.approx(200.0)


def test_multipliers_are_log_linear():
    a = Campaign("a", 0, 3, 4, edge_lifts={("x", "y"): 2.0})
    b = Campaign(
        "b",
        2,
        3,
        4,
        spend=spread_spend(4, 2, 3, per_day=100.0),
        half_saturation=100.0,
        edge_lifts={("x", "y"): 3.0},
        arrival_lifts={"social": 1.5},
    )
    edges, arrivals = rate_multipliers([a, b], np.arange(4))
    pressure_b = hill_saturation(np.array([0, 0, 100.0, 100.0]), 100.0)
    assert_allclose(edges[("x", "y", None)], 2.0 * 3.0**pressure_b)
    assert_allclose(arrivals[("social", None)], 1.5**pressure_b)


def test_campaign_changes_only_its_edge_inside_its_window(bike_funnel):
    sale = Campaign(
        "sale",
        start=10,
        end=19,
        n_days=30,
        edge_lifts={("desire", "conversion"): 2.5},
        arrival_lifts={"*": 2.0},
    )
    kw = dict(start="2026-01-01", periods=30, arrivals_per_day=10, dt=1.0)  # a step = a day
    plain = compile_model(bike_funnel, **kw)
    model = compile_model(bike_funnel, campaigns=[sale], **kw)
    desire = bike_funnel.index("desire")
    slot = list(model.dest[desire]).index(bike_funnel.index("conversion"))
    ratio = model.slot_rates[:, desire, slot] / plain.slot_rates[0, desire, slot]
    assert_allclose(ratio, np.where((np.arange(30) >= 10) & (np.arange(30) <= 19), 2.5, 1.0))
    others = np.ones_like(model.slot_rates[0], dtype=bool)
    others[desire, slot] = False
    assert np.array_equal(
        model.slot_rates[:, others], np.repeat(plain.slot_rates[:, others], 30, 0)
    )
    assert_allclose(model.probs[15], step_probabilities(model.slot_rates[15], 1.0))
    assert_allclose(model.external_rate[:, 0], np.where(ratio > 1, 20.0, 10.0))
