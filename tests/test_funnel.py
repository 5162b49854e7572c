"""The journey model: parameter forms, step matrices, presets."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose

from funnelsim.funnel import (
    LOST,
    Funnel,
    list_presets,
    load_preset,
    rates_to_routing,
    routing_to_rates,
    step_probabilities,
)

from .conftest import exact_step


def test_routing_form_converts_exactly_to_rates(bike_funnel):
    assert bike_funnel.stages == ("awareness", "interest", "desire", "conversion", "advocacy", LOST)
    assert bike_funnel.rate("interest", "awareness") == pytest.approx(0.20 / 10)
    assert bike_funnel.rate("awareness", "lost") == pytest.approx(0.65 / 14)
    assert bike_funnel.dwell_days()["desire"] == pytest.approx(7.0)
    assert bike_funnel.routing()["desire"] == pytest.approx(
        {"conversion": 0.3, "interest": 0.3, "lost": 0.4}
    )


def test_rates_and_routing_round_trip():
    rates = {"desire": 0.031, "awareness": 0.007, "lost": 0.052}
    dwell, routing = rates_to_routing(rates)
    assert routing_to_rates(dwell, routing) == pytest.approx(rates)


def test_back_edges_skips_and_repeats_are_edges(repeat_funnel):
    edges = set(repeat_funnel.edges)
    assert ("lead", "visit") in edges  # backwards
    assert ("visit", "purchase") in edges  # skip
    assert ("purchase", "purchase") in edges  # repeat event
    assert repeat_funnel.reachable_from("visit") == {"visit", "lead", "purchase", LOST}
    assert repeat_funnel.reachable_from(LOST) == {LOST}


def test_step_probabilities_match_competing_risks(bike_funnel):
    event, stay = exact_step(bike_funnel.rates, 0.5)
    probs = step_probabilities(bike_funnel.rates, 0.5)
    assert_allclose(probs[:, :-1], event, rtol=1e-14, atol=1e-16)
    assert_allclose(probs[:, -1], stay, rtol=1e-14)
    assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-14)


def test_step_matrix_keeps_repeaters_in_place(repeat_funnel):
    p = repeat_funnel.step_matrix(1.0)
    assert_allclose(p.sum(axis=1), 1.0, rtol=1e-14)
    i = repeat_funnel.index("purchase")
    # staying and repeating both leave the person in `purchase`
    assert p[i, i] == pytest.approx(1 - (0.02 / 0.06) * (1 - np.exp(-0.06)))


def test_small_steps_approach_the_continuous_time_chain(bike_funnel):
    from scipy.linalg import expm

    generator = bike_funnel.rates - np.diag(bike_funnel.rates.sum(axis=1))
    exact = expm(generator * 1.0)
    approx = np.linalg.matrix_power(bike_funnel.step_matrix(1 / 64), 64)
    assert_allclose(approx, exact, atol=2e-4)


def test_bad_funnels_are_refused():
    with pytest.raises(ValueError, match="goal"):
        Funnel.from_rates({"a": {"lost": 1.0}}, goal="b")
    with pytest.raises(ValueError, match="non-negative"):
        Funnel(("a", LOST), np.array([[0.0, -1.0], [0.0, 0.0]]), goal="a")


@pytest.mark.parametrize("name", ["bike_shop", "saas", "web"])
def test_presets_are_valid_journeys(name):
    from funnelsim.scenario.runner import build_funnel
    from funnelsim.scenario.schema import FunnelSpec

    spec = FunnelSpec.model_validate(load_preset(name))
    funnel = build_funnel(spec)
    assert spec.goal in funnel.reachable_from(funnel.entry)
    assert list_presets()[name].endswith("illustrative numbers")
    # every preset journey goes back at least once (people are not linear)
    order = {s: i for i, s in enumerate(funnel.stages)}
    assert any(order[t] < order[s] for s, t in funnel.edges if LOST not in (s, t))


def test_to_spec_round_trips(bike_funnel):
    from funnelsim.scenario.runner import build_funnel
    from funnelsim.scenario.schema import FunnelSpec

    again = build_funnel(FunnelSpec.model_validate(bike_funnel.to_spec()))
    assert again.stages == bike_funnel.stages
    assert_allclose(again.rates, bike_funnel.rates, rtol=1e-15)
