"""The agent engine against the count engine and against queueing theory.

The count engine is checked against closed forms elsewhere; here the agent engine must
agree with it: means against the expected engine on a very fine clock (its exact mean,
with discretisation far below the sampling error; the count engine counts a move at the
end of the step it happens in, a delay of dt/2 per move), and whole distributions
against the count engine with a two-sample test. A single queue must reproduce the
M/M/c mean wait.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from funnelsim.campaigns import Campaign
from funnelsim.dynamics import compile_model
from funnelsim.engines import get_engine
from funnelsim.funnel import Capacity, Dwell, Funnel

REPS = 200
KW = dict(
    start="2026-11-01",
    periods=30,
    initial={"awareness": 500},
    arrivals_per_day=15,
    channels={"social": 0.7, "store": 0.3},
)


def three(funnel, campaigns=(), kw=KW):
    """Agent replicates, count replicates (dt 0.02) and the exact mean (dt 0.002)."""
    agents = compile_model(funnel, expand_phases=False, campaigns=campaigns, **kw)
    counts = compile_model(funnel, campaigns=campaigns, dt=0.02, **kw)
    mean = compile_model(funnel, campaigns=campaigns, dt=0.002, **kw)
    return (
        get_engine("agents").run(agents, REPS, seed=1),
        get_engine("counts").run(counts, REPS, seed=2),
        get_engine("expected").run(mean),
    )


def assert_mean(sample: np.ndarray, exact: float, z: float = 4.5) -> None:
    se = sample.std(ddof=1) / np.sqrt(len(sample))
    assert abs(sample.mean() - exact) < z * se + 1e-9 * abs(exact), (sample.mean(), exact, se)


def assert_same_distribution(a: np.ndarray, b: np.ndarray) -> None:
    """Two-sample Kolmogorov–Smirnov test on per-replicate values."""
    assert stats.ks_2samp(a.astype(float), b.astype(float), method="asymp").pvalue > 1e-3


def test_agents_and_counts_agree_on_a_markov_journey(bike_funnel):
    a, c, e = three(bike_funnel)
    conv_a = a.flows[:, :, :, 3].sum(axis=(1, 2))
    assert_mean(conv_a, e.flows[0, :, :, 3].sum())
    assert_same_distribution(conv_a, c.flows[:, :, :, 3].sum(axis=(1, 2)))
    for t in (4, 14, 29):
        for s in range(5):
            assert_mean(a.occupancy[:, t, s], e.occupancy[0, t, s])
    # channels are carried along: conversions split by channel agree too
    for k in range(2):
        assert_mean(a.entries[:, :, 3, k].sum(axis=1), e.entries[0, :, 3, k].sum())
    present = a.initial.sum(axis=1)[:, None] + a.arrivals.sum(axis=2).cumsum(axis=1)
    assert np.array_equal(a.occupancy.sum(axis=2), present)


def test_agents_and_counts_agree_under_a_campaign(bike_funnel):
    sale = Campaign(
        "sale",
        start=10,
        end=19,
        n_days=30,
        edge_lifts={("desire", "conversion"): 3.0},
        arrival_lifts={"social": 2.0},
    )
    a, c, e = three(bike_funnel, [sale])
    conv_a = a.flows[:, :, :, 3].sum(axis=(1, 2))
    assert_mean(conv_a, e.flows[0, :, :, 3].sum())
    assert_same_distribution(conv_a, c.flows[:, :, :, 3].sum(axis=(1, 2)))
    assert_mean(a.flows[:, 15, 2, 3], e.flows[0, 15, 2, 3])
    assert_mean(a.arrivals[:, 12, 0], e.arrivals[0, 12, 0])


def test_gamma_dwell_agents_match_phase_expansion():
    funnel = Funnel.from_rates(
        {"lead": {"customer": 0.1, "lost": 0.1}, "customer": {"customer": 0.05, "lost": 0.02}},
        goal="customer",
        dwell={"lead": Dwell("gamma", 3.0), "customer": Dwell("gamma", 2.0)},
    )
    kw = dict(KW, initial={"lead": 500}, channels=None)
    counts = compile_model(funnel, **kw)
    assert counts.n_compartments == 2 * (3 + 2 + 1)  # lead, customer phases, lost; 2 channels
    a, c, e = three(funnel, kw=kw)
    for t in (2, 9, 29):
        for s in range(2):
            assert_mean(a.occupancy[:, t, s], e.occupancy[0, t, s])
    repeats = a.flows[:, :, 1, 1].sum(axis=1)
    assert_mean(repeats, e.flows[0, :, 1, 1].sum())
    assert_same_distribution(repeats, c.flows[:, :, 1, 1].sum(axis=1))
    # and the dwell really is gamma: nobody of the initial 500 leaves `lead` in the first
    # day as often as an exponential would let them (P(Gamma(3, 5/3) < 1) ≈ 2.3% vs 18%)
    first_day = a.flows[:, 0, 0, :].sum(axis=1).mean() / 500
    assert first_day == pytest.approx(stats.gamma.cdf(1.0, 3, scale=5 / 3), abs=0.01)


def erlang_c_wait(arrival_rate: float, service_rate: float, servers: int) -> float:
    a = arrival_rate / service_rate
    top = a**servers / math.factorial(servers) * servers / (servers - a)
    bottom = sum(a**k / math.factorial(k) for k in range(servers)) + top
    return top / bottom / (servers * service_rate - arrival_rate)


def test_single_queue_reproduces_erlang_c():
    lam, mu, c = 2.1, 1.0, 3
    funnel = Funnel.from_rates(
        {"call": {"done": mu}, "done": {}},
        goal="done",
        capacity={"call": Capacity(servers=c, service_days=1 / mu)},
    )
    model = compile_model(
        funnel, start="2026-01-01", periods=400, arrivals_per_day=lam, expand_phases=False
    )
    raw = get_engine("agents").run(model, 40, seed=8)
    served, lost, wait_mean = (raw.queues[:, 0, k] for k in range(3))
    assert np.all(lost == 0)  # infinite patience
    exact = erlang_c_wait(lam, mu, c)  # ≈ 0.73 days
    se = wait_mean.std(ddof=1) / np.sqrt(len(wait_mean))
    # starting empty biases the mean wait down by a few days' worth out of 400
    assert abs(wait_mean.mean() - exact) < 4 * se + 0.02 * exact, (wait_mean.mean(), exact, se)
    utilisation = raw.queues[:, 0, 5]
    assert utilisation.mean() == pytest.approx(lam / (c * mu), abs=0.02)


def test_impatient_leads_are_lost_to_waiting():
    funnel = Funnel.from_rates(
        {"lead": {"customer": 2.0}, "customer": {}},
        goal="customer",
        capacity={"lead": Capacity(1, 0.5, patience_days=0.25)},
    )
    model = compile_model(
        funnel, start="2026-01-01", periods=60, arrivals_per_day=4, expand_phases=False
    )
    raw = get_engine("agents").run(model, 5, seed=2)
    lost_waiting = raw.queues[:, 0, 1]
    assert np.all(lost_waiting > 0)
    assert np.array_equal(raw.flows[:, :, 0, 2].sum(axis=1), lost_waiting)  # lead → lost
    assert np.all(raw.queues[:, 0, 4] <= 0.25 + 1e-9)  # nobody served waited past patience


def test_word_of_mouth_contacts_follow_bass():
    from tests.test_word_of_mouth import P, Q, bass

    M = 3000  # noqa: N806 - the market size, as in the Bass model
    funnel = Funnel.from_rates({"adopter": {}}, goal="adopter")
    model = compile_model(
        funnel,
        start="2026-01-01",
        periods=25,
        arrivals_per_day=P * M,
        referrals_per_day={"adopter": Q},
        market_size=M,
        expand_phases=False,
    )
    raw = get_engine("agents").run(model, 20, seed=4)
    share = raw.occupancy[:, :, 0] / M
    se = share.std(axis=0, ddof=1) / np.sqrt(20)
    # continuous time: no discretisation error, only sampling error
    assert np.all(np.abs(share.mean(axis=0) - bass(np.arange(1, 26))) < 4.5 * se + 1e-4)


def test_same_seed_same_log_and_workers_do_not_matter(bike_funnel):
    model = compile_model(bike_funnel, expand_phases=False, **dict(KW, periods=10))
    one = get_engine("agents", workers=1, record=True)
    two = get_engine("agents", workers=2, record=True)
    a = one.run(model, 4, seed=5)
    b = two.run(model, 4, seed=5)
    assert np.array_equal(a.flows, b.flows) and np.array_equal(a.occupancy, b.occupancy)
    for x, y in zip(one.last_events, two.last_events):
        for u, v in zip(x, y):
            assert np.array_equal(u, v)
    c = get_engine("agents").run(model, 4, seed=6)
    assert not np.array_equal(a.flows, c.flows)


def test_non_markov_dwell_and_queues_need_the_agents_engine():
    weibull = Funnel.from_rates({"a": {"lost": 0.1}}, goal="a", dwell={"a": Dwell("weibull", 2.0)})
    with pytest.raises(ValueError, match="weibull dwell .* use the agents engine"):
        compile_model(weibull, start="2026-01-01", periods=5)
    queue = Funnel.from_rates({"a": {"lost": 1.0}}, goal="a", capacity={"a": Capacity(2, 1.0)})
    with pytest.raises(ValueError, match="queues need the agents engine"):
        compile_model(queue, start="2026-01-01", periods=5)
    model = compile_model(
        weibull, start="2026-01-01", periods=20, initial={"a": 3000}, expand_phases=False
    )
    raw = get_engine("agents").run(model, 2, seed=1)
    left = 1 - raw.occupancy[:, 9, 0] / 3000  # Weibull(2) with mean 10 by day 10
    scale = 10 / math.gamma(1.5)
    assert np.allclose(left, 1 - math.exp(-((10 / scale) ** 2)), atol=0.03)
