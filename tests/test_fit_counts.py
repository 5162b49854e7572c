"""The count fitter's mean flows against the engines, its two implementations against
each other, and ``funnelsim fit --kind counts`` as a planner runs it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from funnelsim.campaigns import Campaign, geometric_adstock
from funnelsim.dynamics import compile_model
from funnelsim.engines.expected import ExpectedEngine
from funnelsim.funnel import Funnel
from funnelsim.inference.flows import (
    Grid,
    Params,
    adstock,
    mean_flows,
    period_maps,
    step_matrices,
)

STAGES = ["aw", "int", "des", "conv"]


def _funnel() -> Funnel:
    return Funnel.from_rates(
        {
            "aw": {"int": 0.03, "lost": 0.05},
            "int": {"des": 0.04, "aw": 0.01, "lost": 0.04},
            "des": {"conv": 0.05, "lost": 0.04},
            "conv": {"conv": 0.01, "lost": 0.01},  # repeat purchases count as entries
        },
        goal="conv",
    )


def _grid_and_params(funnel: Funnel, spend: np.ndarray, periods: int, carry: list[float]):
    names = STAGES + ["lost"]
    edges = [(i, j) for i, a in enumerate(STAGES) for j, b in enumerate(names) if funnel.rate(a, b)]
    rate = np.array([funnel.rate(names[i], names[j]) for i, j in edges])
    grid = Grid(
        stages=tuple(STAGES),
        entry=0,
        edges=tuple(edges),
        dates=pd.date_range("2024-01-01", periods=periods, freq="7D"),
        period_days=7,
        steps_per_day=1,
        campaigns=("tv", "social"),
        spend=spend,
        spend_offset=0,
        effect_campaign=np.array([0, 1]),
        effect_edge=np.array([-1, edges.index((0, 1))]),
        shape=np.array([1.0, 1.5]),
        yearly_terms=0,
        weekly_terms=0,
        trend_days=periods * 7.0,
    )
    params = Params(
        rate=rate[None, None],
        log_lift=np.log([[1.6, 1.8]]),
        carryover=np.array([carry]),
        half_saturation=np.array([[300.0, 200.0]]),
        level=np.array([[500.0]]),
        trend=np.zeros(1),
        yearly=np.zeros((1, 0)),
        weekly=np.zeros((1, 0)),
    )
    return grid, params, rate


def _engine(funnel: Funnel, spend: np.ndarray, periods: int, carry: list[float], initial):
    n_days = periods * 7
    campaigns = [
        Campaign("tv", 0, n_days - 1, n_days, spend=spend[0], carryover=carry[0],
                 half_saturation=300.0, arrival_lifts={"*": 1.6}),
        Campaign("social", 0, n_days - 1, n_days, spend=spend[1], carryover=carry[1],
                 half_saturation=200.0, shape=1.5, edge_lifts={("aw", "int"): 1.8}),
    ]  # fmt: skip
    model = compile_model(
        funnel, start="2024-01-01", periods=periods, step_days=7, arrivals_per_day=500.0,
        initial=dict(zip(STAGES, initial)), campaigns=campaigns, dt=1.0,
    )  # fmt: skip
    raw = ExpectedEngine().run(model)
    return raw.entries[0].sum(axis=-1)[:, :4], raw.occupancy[0][:, :4]


def _weekly_spend(rng: np.random.Generator, periods: int) -> np.ndarray:
    on = rng.random((2, periods)) < 0.5
    return np.repeat(np.where(on, rng.gamma(2.0, 200.0, (2, periods)), 0.0), 7, axis=1)


def _assert_flows_equal_the_engine(spend: np.ndarray, carry: list[float]) -> None:
    """The fitter's mean flows from the engine's (rounded) start equal the expected
    engine's entries (repeats included) and occupancy, number for number."""
    funnel, periods = _funnel(), spend.shape[1] // 7
    grid, params, rate = _grid_and_params(funnel, spend, periods, carry)
    _, p0 = step_matrices(grid, rate[None])
    start = np.round(np.linalg.solve((np.eye(4) - p0[0]).T, np.eye(4)[0] * 500.0))
    entries, occupancy = mean_flows(grid, params, initial=start[None, None])
    want_e, want_o = _engine(funnel, spend, periods, carry, start)
    np.testing.assert_allclose(entries[0, 0], want_e, rtol=1e-12)
    np.testing.assert_allclose(occupancy[0, 0], want_o, rtol=1e-12)


def test_flows_equal_the_expected_engine_when_pressure_is_constant_within_periods() -> None:
    """No carryover and spend constant within each week."""
    _assert_flows_equal_the_engine(_weekly_spend(np.random.default_rng(1), 30), [0.0, 0.0])


def test_flows_equal_the_expected_engine_with_carryover_and_daily_spend() -> None:
    """Pressure that changes every day (carryover 0.7 and 0.3, spend drawn per day):
    each day has its own rates in the fitter too, so it still matches the engine."""
    rng = np.random.default_rng(2)
    spend = np.where(rng.random((2, 210)) < 0.4, rng.gamma(2.0, 200.0, (2, 210)), 0.0)
    _assert_flows_equal_the_engine(spend, [0.7, 0.3])


def test_steady_state_is_where_the_funnel_stays_without_campaigns() -> None:
    funnel, periods = _funnel(), 12
    spend = np.zeros((2, periods * 7))
    grid, params, _ = _grid_and_params(funnel, spend, periods, [0.5, 0.5])
    entries, occupancy = mean_flows(grid, params)
    np.testing.assert_allclose(occupancy[0, 0], occupancy[0, 0, :1].repeat(periods, 0), rtol=1e-10)
    np.testing.assert_allclose(entries[0, 0, :, 0], 500.0 * 7 + entries[0, 0, 0, 0] - 3500.0)


def test_adstock_is_the_campaign_kernel() -> None:
    rng = np.random.default_rng(3)
    spend = rng.gamma(1.0, 100.0, (2, 45)) * (rng.random((2, 45)) < 0.4)
    got = adstock(spend, np.array([0.9, 0.2]))
    for c, carry in enumerate([0.9, 0.2]):
        np.testing.assert_allclose(got[c], geometric_adstock(spend[c], carry), rtol=1e-12)


@pytest.mark.parametrize("n", [1, 2, 5, 7, 14])
def test_period_maps_compose_steps(n: int) -> None:
    rng = np.random.default_rng(n)
    p = rng.dirichlet(np.ones(4), size=3)[:, :3] * 0.9
    e = p * (1 - np.eye(3))
    b = np.array([5.0, 0.0, 1.0])
    pi, beta, f_mat, f_vec = period_maps(p, e, b, n, np.eye(3))
    m0 = np.array([3.0, 2.0, 1.0])
    m, ent = m0.copy(), np.zeros(3)
    for _ in range(n):
        ent += m @ e
        m = m @ p + b
    np.testing.assert_allclose(m0 @ pi + beta, m, rtol=1e-12)
    np.testing.assert_allclose(m0 @ f_mat + f_vec, ent, rtol=1e-12)


def test_identifiability_reads_prior_contraction_and_tradeoffs() -> None:
    """Contraction is 1 − var(z | data) for every non-centred prior: a z with posterior sd
    0.1 is pinned, one with sd 0.9 is weak (with a hint naming the data that would help),
    and two z's that move together are reported as a pair."""
    import json

    import arviz as az

    from funnelsim.inference.count_fit import identifiability, identifiability_notes
    from funnelsim.inference.fitted import FittedFunnel

    rng = np.random.default_rng(0)
    n = 4000
    shared = rng.normal(size=n)
    z_rate = np.stack([0.1 * rng.normal(size=n), 0.9 * rng.normal(size=n)], axis=-1)
    z_lift = (0.3 * (0.95 * shared + np.sqrt(1 - 0.95**2) * rng.normal(size=n)))[:, None]
    z_hs = (0.3 * shared)[:, None]
    post = {
        "rate": np.full((1, n, 1, 2), 0.05),
        "z_rate": z_rate[None],
        "z_lift": z_lift[None],
        "z_half_life": 0.2 * rng.normal(size=(1, n, 1)),
        "z_half_saturation": z_hs[None],
        "z_level": 0.05 * rng.normal(size=(1, n, 1)),
        "trend": 0.5 * 0.2 * rng.normal(size=(1, n)),
    }
    idata = az.from_dict(
        posterior=post,
        dims={"rate": ["segment", "edge"]},
        coords={"segment": ["all"], "edge": ["a -> b", "a -> lost"]},
    )
    idata.attrs["funnelsim_counts"] = json.dumps(
        {
            "stages": ["a", "b"], "edges": [[0, 1], [0, 2]],
            "edge_names": ["a -> b", "a -> lost"], "effect_names": ["tv: a -> b"],
            "campaigns": ["tv"], "segments": ["all"], "trend_sd": 0.5, "seasonal_sd": 0.3,
        }
    )  # fmt: skip
    fit = FittedFunnel(idata, stages=("a", "b"), goal="b", kind="counts")
    table, pairs = identifiability(fit)
    verdict = dict(zip(table["parameter"], table["verdict"]))
    assert verdict["rate a -> b"] == "pinned"
    assert verdict["rate a -> lost"] == "weak"
    assert verdict["arrivals level"] == "pinned"
    hint = table.set_index("parameter").loc["rate a -> lost", "hint"]
    assert "occupancy counts of a" in hint and "journey" in hint
    assert abs(table.set_index("parameter").loc["rate a -> lost", "contraction"] - 0.19) < 0.05
    assert {(r.a, r.b) for r in pairs.itertuples()} == {("lift tv: a -> b", "half-saturation tv")}
    notes = identifiability_notes(fit)
    assert any("rate a -> lost" in note and "barely" in note for note in notes)
    assert any("trade off" in note for note in notes)
