"""Customers who differ in the engines: a stage split into rate classes.

The count engines run a repeat stage fitted customer by customer as K classes (extra
compartments). Checked here: a classes model moves exactly what K personas with the
same rates move; the gamma discretisation keeps every known customer's expected
repeats over the forecast's horizon exactly (and close over others), and new
customers' too; the classes' rows of rates are the fitted ones.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from funnelsim.campaigns import Campaign
from funnelsim.dynamics import RateClasses, Segment, compile_model
from funnelsim.engines.expected import ExpectedEngine
from funnelsim.funnel import Funnel
from funnelsim.inference import frailty
from funnelsim.inference.rate_classes import _stay, repeat_classes
from funnelsim.inference.repeat import RepeatHistories, RepeatModel

STAGES = ("visit", "buy", "advocate", "lost")
FAST = {"visit": {"buy": 0.2, "lost": 0.05}, "buy": {"buy": 0.15, "advocate": 0.01, "lost": 0.02}}
SLOW = {"visit": {"buy": 0.2, "lost": 0.05}, "buy": {"buy": 0.01, "advocate": 0.01, "lost": 0.004}}


def _funnel(rates: dict) -> Funnel:
    return Funnel.from_rates(rates | {"advocate": {"lost": 0.03}}, goal="buy")


def _run(**kw) -> xr.Dataset:
    model = compile_model(
        start="2026-01-01", periods=20, step_days=7.0, arrivals_per_day=30.0, dt=0.1, **kw
    )
    raw = ExpectedEngine().run(model)
    return raw.entries.sum(axis=-1)[0], raw.occupancy[0]


def test_classes_move_what_personas_with_the_same_rates_move() -> None:
    """The expected engine is linear, so a stage split 40/60 into two classes at entry
    moves exactly what two personas (40/60 of arrivals, same rates elsewhere) move;
    a campaign on the edge into the stage lifts every class's entry slot."""
    fast, slow = _funnel(FAST), _funnel(SLOW)
    sale = Campaign("sale", 30, 60, 140, edge_lifts={("visit", "buy"): 1.8})
    rows = [[fast.rate("buy", s) for s in fast.stages], [slow.rate("buy", s) for s in fast.stages]]
    classes = RateClasses("buy", [0.4, 0.6], rows)
    initial = {"visit": 100, "buy": 500}
    got = _run(funnel=fast, initial=initial, classes=classes, campaigns=[sale])
    personas = [Segment("fast", 0.4, fast), Segment("slow", 0.6, slow)]
    want = _run(funnel=fast, initial=initial, segments=personas, campaigns=[sale])
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-9)
    assert got[0][:, STAGES.index("buy")].sum() > 0


def _posterior(**values: float) -> xr.Dataset:
    """A posterior of a few draws around ``values`` (scalars, or class vectors)."""
    rng = np.random.default_rng(0)
    data = {}
    for name, v in values.items():
        v = np.asarray(v, dtype=float)
        jitter = np.exp(rng.normal(0, 0.05, (1, 4, *v.shape)))
        dims = ("chain", "draw", *(["class"] if v.ndim else []))
        data[name] = (dims, v * jitter)
    return xr.Dataset(data)


def _pareto_nbd_histories(n: int, seed: int) -> RepeatHistories:
    rng = np.random.default_rng(seed)
    lam, mu = rng.gamma(0.6, 1 / 20.0, n), rng.gamma(0.8, 1 / 120.0, n)
    T = rng.uniform(1.0, 540.0, n)
    life = np.minimum(rng.exponential(1.0, n) / mu, T)
    x = rng.poisson(lam * life)
    t_x = np.where(x > 0, life * rng.beta(np.maximum(x, 1), 1.0), 0.0)
    return RepeatHistories(
        "buy", np.arange(n), x, t_x, T, np.zeros(n, bool), (), np.zeros((n, 0), np.int64)
    )


@pytest.fixture(scope="module")
def gamma_model() -> RepeatModel:
    post = _posterior(repeat_r=0.6, repeat_alpha=20.0, dropout_s=0.8, dropout_beta=120.0)
    return RepeatModel(post, "gamma")


def test_gamma_classes_keep_each_customers_expected_repeats(gamma_model: RepeatModel) -> None:
    """Each known customer's classes add up to P(still there), and their expected
    repeats over the forecast's horizon are exact; over a third of it or twice it,
    the total is within 1.5% (the grid's only approximation)."""
    h = _pareto_nbd_histories(4_000, 1)
    horizon = 120.0
    classes = repeat_classes(gamma_model, "buy", h, horizon)
    alive = gamma_model.p_alive(h)
    for d in range(classes.n_draws):
        member = classes.member(d)
        np.testing.assert_allclose(member.sum(axis=1), alive[d], rtol=1e-10, atol=1e-14)
        p = {k: float(v[d]) for k, v in gamma_model.params.items() if v.ndim == 1}
        for days, tol in ((horizon, 1e-6), (horizon / 3, 0.015), (2 * horizon, 0.015)):
            exact = frailty.expected_repeats(
                days, h.x, h.t_x, h.T, p["r"], p["alpha"], p["s"], p["beta"]
            )
            mine = member @ (classes.lam[d] * _stay(classes.mu[d], days))
            if tol <= 1e-6:
                np.testing.assert_allclose(mine, exact, rtol=tol, atol=1e-12)
            assert abs(mine.sum() / exact.sum() - 1) < tol, (d, days)
        # people who join the stage later: E[λ] E[(1 − e^{−μH}) / μ] in closed form
        r, a, s, b = p["r"], p["alpha"], p["s"], p["beta"]
        for days, tol in ((horizon, 1e-6), (horizon / 3, 0.015)):
            exact = r / a * b**s * ((b + days) ** (1 - s) - b ** (1 - s)) / (1 - s)
            mine = (classes.weight[d] * classes.lam[d] * _stay(classes.mu[d], days)).sum()
            assert abs(mine / exact - 1) < tol
        assert abs(classes.weight[d].sum() - 1) < 1e-12
        np.testing.assert_allclose((classes.weight[d] * classes.lam[d]).sum(), r / a, rtol=1e-9)


def test_kinds_of_customer_are_their_own_classes() -> None:
    """A ``classes:K`` fit runs as its K classes: each class's row has its repeat
    rate, its drop-out plus the shared exits, and the weights are the fitted ones."""
    post = _posterior(
        class_weight=[0.7, 0.3], class_repeat_rate=[0.01, 0.2], class_dropout_rate=[0.002, 0.01]
    )
    post["stage_exit_rate"] = (("chain", "draw", "exit"), np.full((1, 4, 1), 0.003))
    model = RepeatModel(post, "classes")
    h = _pareto_nbd_histories(300, 2)
    h = RepeatHistories("buy", h.customer_id, h.x, h.t_x, h.T, h.exited, ("advocate",),
                        np.zeros((len(h), 1), np.int64))  # fmt: skip
    classes = repeat_classes(model, "buy", h)
    rows = classes.rates(0, STAGES)
    np.testing.assert_allclose(rows[:, 1], model.params["lam"][0])
    np.testing.assert_allclose(rows[:, 2], 0.003)
    np.testing.assert_allclose(rows[:, 3], model.params["mu"][0])
    np.testing.assert_allclose(classes.weight, model.params["w"])
    np.testing.assert_allclose(classes.member(1).sum(axis=1), model.p_alive(h)[1], rtol=1e-10)
    # customers who bought often are likely the frequent kind
    frequent = classes.member(0)[:, 1] / classes.member(0).sum(axis=1)
    often, never = (h.x / h.T > 0.1) & (h.T > 60), (h.x == 0) & (h.T > 100)
    assert frequent[often].mean() > 0.9 and frequent[never].mean() < 0.1


def test_arrivals_into_a_stage_with_classes_are_sorted_by_weight() -> None:
    """A purchase log's funnel starts at the repeat stage: new customers arrive in it.
    They wait one clock step in a sorting compartment, then join a class by its
    weight; against personas split at arrival, the flows differ only by that step."""
    rates = {"buy": {"buy": 0.15, "lost": 0.02}}
    slow = {"buy": {"buy": 0.01, "lost": 0.004}}
    fast_f = Funnel.from_rates(rates, goal="buy")
    slow_f = Funnel.from_rates(slow, goal="buy")
    rows = [[0.15, 0.02], [0.01, 0.004]]
    got = _run(funnel=fast_f, classes=RateClasses("buy", [0.3, 0.7], rows))
    personas = [Segment("fast", 0.3, fast_f), Segment("slow", 0.7, slow_f)]
    want = _run(funnel=fast_f, segments=personas)
    np.testing.assert_allclose(got[1][:, 0], want[1][:, 0], rtol=0.01)  # in the stage
    repeats = got[0][:, 0].sum(), want[0][:, 0].sum()
    assert abs(repeats[0] / repeats[1] - 1) < 0.01
    # the arrivals themselves are entries, counted once
    np.testing.assert_allclose(got[0][0, 0] - want[0][0, 0], 0.0, atol=0.02 * want[0][0, 0])
