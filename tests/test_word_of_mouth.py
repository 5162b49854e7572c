"""Word of mouth with a finite market reproduces the Bass diffusion curve."""

from __future__ import annotations

import numpy as np
import pytest

from funnelsim.dynamics import compile_model
from funnelsim.engines import get_engine
from funnelsim.funnel import Funnel

P, Q, M = 0.01, 0.3, 20_000


def bass(t: np.ndarray, p: float = P, q: float = Q) -> np.ndarray:
    """Cumulative adopters as a share of the market."""
    e = np.exp(-(p + q) * t)
    return (1 - e) / (1 + (q / p) * e)


def adopters_model(dt: float):
    """Everyone who becomes aware adopts at once, never leaves and refers forever:
    hazard per unaware person = p + q · A(t) / M, which is the Bass model."""
    funnel = Funnel.from_rates({"adopter": {}}, goal="adopter")
    return compile_model(
        funnel,
        start="2026-01-01",
        periods=40,
        arrivals_per_day=P * M,
        referrals_per_day={"adopter": Q},
        market_size=M,
        dt=dt,
    )


def test_expected_engine_follows_the_bass_curve():
    t = np.arange(1, 41)
    errors = []
    for dt in (0.1, 0.05, 0.025):
        raw = get_engine("expected").run(adopters_model(dt))
        errors.append(np.abs(raw.occupancy[0, :, 0] / M - bass(t)).max())
        assert raw.occupancy[0, -1].sum() == pytest.approx(raw.arrivals[0].sum())
    # a first-order scheme: the error halves with the clock step and vanishes with it
    assert errors[0] < 0.012
    assert errors[0] / errors[1] == pytest.approx(2.0, abs=0.1)
    assert errors[1] / errors[2] == pytest.approx(2.0, abs=0.1)


def test_count_engine_follows_the_bass_curve():
    reps = 200
    raw = get_engine("counts").run(adopters_model(0.05), reps, seed=3)
    share = raw.occupancy[:, :, 0] / M
    t = np.arange(1, 41)
    se = share.std(axis=0, ddof=1) / np.sqrt(reps)
    discretisation = 0.12 * 0.05  # see the expected-engine test: error ≈ 0.11·dt
    assert np.all(np.abs(share.mean(axis=0) - bass(t)) < 4.5 * se + discretisation)
    # nobody beyond the market ever arrives, and referrals brought most of them
    assert raw.arrivals.sum(axis=(1, 2)).max() <= M
    channels = adopters_model(0.05).channels
    referral = channels.index("referral")
    assert raw.arrivals[..., referral].sum() > 0.8 * raw.arrivals.sum()


def test_infinite_market_referrals_are_poisson_contacts():
    """Without a market, each referrer makes Poisson contacts at its rate: from a fixed
    group of 1000 advocates who never leave, referral arrivals average 1000·q per day."""
    funnel = Funnel.from_rates({"aware": {"lost": 0.1}, "advocate": {}}, goal="advocate")
    model = compile_model(
        funnel,
        start="2026-01-01",
        periods=10,
        initial={"advocate": 1000},
        referrals_per_day={"advocate": 0.05},
    )
    raw = get_engine("counts").run(model, 300, seed=9)
    per_day = raw.arrivals[..., model.channels.index("referral")].astype(float)
    assert abs(per_day.mean() - 50.0) < 4.5 * per_day.std(ddof=1) / np.sqrt(per_day.size)
    assert per_day.var(ddof=1) / per_day.mean() == pytest.approx(1.0, abs=0.1)
