"""Engines against exact answers.

The count engine is a discrete-time Markov chain on counts. For one person the state
distribution after t steps is ``e_i P^t``; a closed cohort of N people is therefore
multinomial with those probabilities, and Poisson arrivals thin into independent Poisson
counts. Means are matrix powers; the expected engine must match them to 1e-9 and the
count engine within a few standard errors.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy import stats

from funnelsim.dynamics import compile_model
from funnelsim.engines import ENGINES, get_engine

from .conftest import bike_journey, exact_step

Z_MAX = 4.5  # per-cell bound; ~30 cells per test → family-wise false alarm < 1e-3


def closed_form(funnel, periods, initial, arrivals_per_day, dt=1.0, steps_per_period=1):
    """Mean occupancy at each period end and mean flows per period, by matrix recursion."""
    event, stay = exact_step(funnel.rates, dt)
    p = event + np.diag(stay)  # where a person is after one step
    s = funnel.n_stages
    m = np.zeros(s)
    for stage, n in initial.items():
        m[funnel.index(stage)] = n
    a = np.zeros(s)
    a[funnel.index(funnel.entry)] = arrivals_per_day * dt
    occupancy, flows = [], []
    for _ in range(periods):
        f = np.zeros((s, s))
        for _ in range(steps_per_period):
            f += m[:, None] * event
            m = m @ p + a
        occupancy.append(m)
        flows.append(f)
    return np.array(occupancy), np.array(flows)


def closed_form_powers(funnel, t, initial_vec, a_vec):
    """``m_t = m_0 P^t + a Σ_{k<t} P^k`` written with matrix powers."""
    event, stay = exact_step(funnel.rates, 1.0)
    p = event + np.diag(stay)
    total = initial_vec @ np.linalg.matrix_power(p, t)
    for k in range(t):
        total = total + a_vec @ np.linalg.matrix_power(p, k)
    return total


def test_recursion_equals_matrix_powers(bike_funnel):
    occ, _ = closed_form(bike_funnel, 30, {"awareness": 5000}, 300)
    init = np.zeros(6)
    init[0] = 5000
    arr = np.zeros(6)
    arr[0] = 300
    assert_allclose(occ[29], closed_form_powers(bike_funnel, 30, init, arr), rtol=1e-12)


@pytest.mark.parametrize("step_days", [1.0, 7.0], ids=["daily", "weekly"])
def test_expected_engine_matches_closed_form(bike_funnel, step_days):
    periods = 20 if step_days == 7.0 else 90
    model = compile_model(
        bike_funnel,
        start="2026-11-01",
        periods=periods,
        step_days=step_days,
        initial={"awareness": 5000, "desire": 40},
        arrivals_per_day=300,
    )
    raw = get_engine("expected").run(model)
    occ, flows = closed_form(
        bike_funnel,
        periods,
        {"awareness": 5000, "desire": 40},
        300,
        dt=model.dt,
        steps_per_period=model.steps_per_period,
    )
    assert_allclose(raw.occupancy[0], occ, rtol=1e-9)
    assert_allclose(raw.flows[0], flows, rtol=1e-9, atol=1e-9)
    assert_allclose(raw.arrivals[0].sum(axis=1), 300 * step_days, rtol=1e-12)


def test_expected_engine_with_repeats_and_fine_clock(repeat_funnel):
    model = compile_model(
        repeat_funnel,
        start="2026-01-01",
        periods=40,
        initial={"visit": 1000},
        arrivals_per_day=50,
        dt=0.25,
    )
    raw = get_engine("expected").run(model)
    occ, flows = closed_form(repeat_funnel, 40, {"visit": 1000}, 50, dt=0.25, steps_per_period=4)
    assert_allclose(raw.occupancy[0], occ, rtol=1e-9)
    assert_allclose(raw.flows[0], flows, rtol=1e-9, atol=1e-9)
    g = repeat_funnel.index("purchase")
    assert raw.flows[0][:, g, g].sum() > 0  # repeat purchases were counted


@pytest.fixture(scope="module")
def bike_runs():
    funnel = bike_journey()
    model = compile_model(
        funnel,
        start="2026-11-01",
        periods=60,
        initial={"awareness": 5000},
        arrivals_per_day=300,
        channels={"social": 0.6, "search": 0.3, "store": 0.1},
        dt=1.0,
    )
    return funnel, model, get_engine("counts").run(model, 2000, seed=7)


def test_counts_mean_occupancy_matches_closed_form(bike_runs):
    funnel, model, raw = bike_runs
    occ, _ = closed_form(funnel, 60, {"awareness": 5000}, 300)
    for t in (0, 4, 14, 29, 59):
        sample = raw.occupancy[:, t, :].astype(float)
        se = sample.std(axis=0, ddof=1) / np.sqrt(len(sample))
        live = se > 0
        z = (sample.mean(axis=0) - occ[t])[live] / se[live]
        assert np.abs(z).max() < Z_MAX, (t, z)
        assert_allclose(sample.mean(axis=0)[~live], occ[t][~live], atol=1e-12)


def test_counts_cumulative_conversions_match_closed_form(bike_runs):
    funnel, model, raw = bike_runs
    _, flows = closed_form(funnel, 60, {"awareness": 5000}, 300)
    goal = funnel.index("conversion")
    exact = flows[:, :, goal].sum(axis=1).cumsum()
    sample = raw.flows[:, :, :, goal].sum(axis=2).cumsum(axis=1).astype(float)
    se = sample.std(axis=0, ddof=1) / np.sqrt(len(sample))
    z = (sample.mean(axis=0) - exact)[se > 0] / se[se > 0]
    assert np.abs(z).max() < Z_MAX


def test_counts_conserve_people_in_every_replicate(bike_runs):
    _, model, raw = bike_runs
    present = raw.initial.sum(axis=1)[:, None] + raw.arrivals.sum(axis=2).cumsum(axis=1)
    assert np.array_equal(raw.occupancy.sum(axis=2), present)
    # and flows balance occupancy: end = start + in − out, stage by stage
    inflow = raw.flows.sum(axis=2) - np.einsum("rtii->rti", raw.flows)
    outflow = raw.flows.sum(axis=3) - np.einsum("rtii->rti", raw.flows)
    start = np.concatenate([raw.initial[:, None, :], raw.occupancy[:, :-1, :]], axis=1)
    arrived = np.zeros_like(start)
    arrived[:, :, 0] = raw.arrivals.sum(axis=2)
    assert np.array_equal(raw.occupancy, start + inflow - outflow + arrived)


def test_counts_arrivals_split_by_channel(bike_runs):
    _, model, raw = bike_runs
    assert model.channels == ("social", "search", "store", "existing")
    per_day = raw.arrivals.mean(axis=(0, 1))
    se = raw.arrivals.std(axis=(0, 1), ddof=1) / np.sqrt(
        raw.arrivals.shape[0] * raw.arrivals.shape[1]
    )
    assert np.all(np.abs(per_day - np.array([180, 90, 30, 0])) < Z_MAX * np.maximum(se, 1e-12))
    # entries by arrival cell add up to the stage entries, and carry the channel along
    goal = 3
    by_cell = raw.entries[:, :, goal, :]
    assert np.array_equal(by_cell.sum(axis=2), raw.flows[:, :, :, goal].sum(axis=2))
    share = by_cell[..., :3].sum(axis=(0, 1)) / by_cell[..., :3].sum()
    assert np.all(np.abs(share - [0.6, 0.3, 0.1]) < 0.01)


def test_closed_cohort_is_multinomial(bike_funnel):
    """No arrivals: occupancy of each stage is Binomial(N, p_t[stage]) exactly."""
    n, t, reps = 400, 12, 3000
    model = compile_model(
        bike_funnel, start="2026-01-01", periods=t, initial={"awareness": n}, dt=1.0
    )
    raw = get_engine("counts").run(model, reps, seed=11)
    event, stay = exact_step(bike_funnel.rates, 1.0)
    p = np.eye(6)[0] @ np.linalg.matrix_power(event + np.diag(stay), t)
    last = raw.occupancy[:, -1, :].astype(float)
    for j in range(6):
        if 0.01 < p[j] < 0.99:
            var = last[:, j].var(ddof=1)
            # sample variance of a binomial: (reps-1) s²/σ² ≈ χ²(reps-1)
            lo, hi = stats.chi2.ppf([1e-4, 1 - 1e-4], reps - 1) / (reps - 1)
            assert lo < var / (n * p[j] * (1 - p[j])) < hi, bike_funnel.stages[j]
    # the whole distribution of one stage, not only its variance: χ² goodness of fit
    j = 1
    observed = np.bincount(last[:, j].astype(int), minlength=n + 1)
    expected = stats.binom.pmf(np.arange(n + 1), n, p[j]) * reps
    keep = expected >= 5
    obs = np.append(observed[keep], observed[~keep].sum())
    exp = np.append(expected[keep], expected[~keep].sum())
    assert stats.chisquare(obs, exp * obs.sum() / exp.sum()).pvalue > 1e-3


def test_arrivals_only_occupancy_is_poisson(bike_funnel):
    """Poisson arrivals thinned through a Markov chain give Poisson counts: var = mean."""
    reps = 3000
    model = compile_model(bike_funnel, start="2026-01-01", periods=30, arrivals_per_day=40, dt=1.0)
    raw = get_engine("counts").run(model, reps, seed=5)
    last = raw.occupancy[:, -1, :4].astype(float)
    ratio = last.var(axis=0, ddof=1) / last.mean(axis=0)
    lo, hi = stats.chi2.ppf([1e-4, 1 - 1e-4], reps - 1) / (reps - 1)
    assert np.all((lo < ratio) & (ratio < hi)), ratio


def test_cost_does_not_depend_on_population(bike_funnel):
    """A billion people is the same work as a thousand: counts, not customers."""
    model = compile_model(
        bike_funnel,
        start="2026-01-01",
        periods=30,
        initial={"awareness": 10**9},
        arrivals_per_day=10**7,
        dt=1.0,
    )
    raw = get_engine("counts").run(model, 3, seed=1)
    assert raw.occupancy.sum(axis=2)[:, -1].min() > 10**9
    occ, _ = closed_form(bike_funnel, 30, {"awareness": 10**9}, 10**7)
    assert_allclose(raw.occupancy[:, -1].mean(axis=0)[:5], occ[-1][:5], rtol=1e-3)


@pytest.mark.parametrize("name", sorted(ENGINES))
def test_engines_share_one_contract(bike_funnel, name):
    model = compile_model(
        bike_funnel,
        start="2026-01-01",
        periods=10,
        initial={"awareness": 100},
        arrivals_per_day=5,
        channels={"a": 0.5, "b": 0.5},
        expand_phases=name != "agents",
    )
    raw = get_engine(name).run(model, 4, seed=3)
    r = raw.occupancy.shape[0]
    assert raw.occupancy.shape == (r, 10, 6)
    assert raw.flows.shape == (r, 10, 6, 6)
    assert raw.arrivals.shape == (r, 10, 3)  # a, b and the people there at the start
    assert raw.entries.shape == (r, 10, 6, 3)
    assert raw.initial.shape == (r, 6)
    assert r == (4 if ENGINES[name].stochastic else 1)
    present = raw.initial.sum(axis=1)[:, None] + raw.arrivals.sum(axis=2).cumsum(axis=1)
    assert np.allclose(raw.occupancy.sum(axis=2), present)  # nobody appears or vanishes


def test_same_seed_same_numbers_and_replicates_do_not_depend_on_r(bike_funnel):
    model = compile_model(
        bike_funnel, start="2026-01-01", periods=15, initial={"awareness": 500}, arrivals_per_day=20
    )
    engine = get_engine("counts")
    a = engine.run(model, 6, seed=99)
    b = engine.run(model, 6, seed=99)
    c = engine.run(model, 3, seed=99)
    d = engine.run(model, 6, seed=100)
    assert np.array_equal(a.flows, b.flows) and np.array_equal(a.occupancy, b.occupancy)
    assert np.array_equal(a.occupancy[:3], c.occupancy)  # replicate r has its own stream
    assert not np.array_equal(a.occupancy, d.occupancy)
    assert not np.array_equal(a.occupancy[0], a.occupancy[1])


def test_unknown_engine_is_a_clear_error():
    with pytest.raises(ValueError, match="choose from agents, counts, expected"):
        get_engine("agentz")


def test_workers_give_identical_results_and_progress(bike_funnel):
    """Threads share the replicates; the counter-based streams make N irrelevant."""
    model = compile_model(
        bike_funnel,
        start="2026-01-01",
        periods=20,
        initial={"awareness": 3000, "advocacy": 50},
        arrivals_per_day=40,
        referrals_per_day={"advocacy": 0.05},
        market_size=50_000,
    )
    done: list[float] = []
    one = get_engine("counts").run(model, 50, seed=4)
    three = get_engine("counts", workers=3).run(model, 50, seed=4, progress=done.append)
    for name in ("initial", "occupancy", "flows", "arrivals", "entries"):
        assert np.array_equal(getattr(one, name), getattr(three, name)), name
    assert sum(done) == 50 and len(done) > 1  # progress per finished chunk


def test_common_random_numbers_per_event_slot(bike_funnel):
    """A change to one stage's probabilities leaves every other stage's draws as they were.

    From day 10 the desire → conversion probability doubles. Before day 10 both runs
    are identical; on day 10 every stage but desire moves exactly the same people,
    because each event slot draws from its own sub-stream.
    """
    model = compile_model(
        bike_funnel,
        start="2026-01-01",
        periods=15,
        initial={"awareness": 2000, "interest": 500, "desire": 300, "conversion": 30},
        arrivals_per_day=50,
        dt=1.0,
    )
    desire, conversion = bike_funnel.index("desire"), bike_funnel.index("conversion")
    probs = np.repeat(model.probs, model.n_steps, axis=0)
    comps = np.nonzero(model.stage_of == desire)[0]
    for c in comps:
        slot = list(model.slot_edge[c]).index(desire * 6 + conversion)
        extra = probs[10:, c, slot].copy()
        probs[10:, c, slot] += extra
        probs[10:, c, -1] -= extra
    lifted = replace(model, probs=probs)
    a = get_engine("counts").run(model, 40, seed=8)
    b = get_engine("counts").run(lifted, 40, seed=8)
    assert np.array_equal(a.flows[:, :10], b.flows[:, :10])
    others = [i for i in range(6) if i != desire]
    assert np.array_equal(a.flows[:, 10][:, others], b.flows[:, 10][:, others])
    assert np.array_equal(a.arrivals[:, 10], b.arrivals[:, 10])
    assert (b.flows[:, 10, desire, conversion] > a.flows[:, 10, desire, conversion]).mean() > 0.5
    assert np.all(b.flows[:, 10, desire, conversion] >= a.flows[:, 10, desire, conversion])


def test_per_replicate_rates(bike_funnel):
    """Posterior draws: replicate r runs with parameter set r."""
    model = compile_model(
        bike_funnel, start="2026-01-01", periods=30, initial={"awareness": 2000}, dt=1.0
    )
    scale = np.tile([1.0, 2.5], 300)  # replicate r: rates × scale[r]
    per_rep = model.with_replicate_rates(scale[:, None, None, None] * model.slot_rates[None])
    expected = get_engine("expected").run(per_rep)
    assert expected.occupancy.shape[0] == 600
    for s in (1.0, 2.5):
        alone = get_engine("expected").run(per_rep.with_replicate_rates(s * model.slot_rates[None]))
        assert_allclose(expected.occupancy[scale == s], np.repeat(alone.occupancy, 300, 0))
    raw = get_engine("counts").run(per_rep, 600, seed=2)
    for s in (1.0, 2.5):
        sample = raw.occupancy[scale == s, -1].astype(float)
        se = sample.std(axis=0, ddof=1) / np.sqrt(len(sample))
        exact = expected.occupancy[np.argmax(scale == s), -1]
        live = se > 0
        assert np.abs((sample.mean(axis=0) - exact)[live] / se[live]).max() < Z_MAX
    with pytest.raises(ValueError, match="2 parameter sets for 3 replicates"):
        get_engine("counts").run(
            per_rep.with_replicate_rates(model.slot_rates[None].repeat(2, 0)), 3, 1
        )
