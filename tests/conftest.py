"""Shared fixtures: small journeys and the path of the shipped examples."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pymc  # noqa: F401 - see below
import pytest

from funnelsim.funnel import Funnel

# PyMC's log handler keeps the stderr of the moment PyMC is first imported. Importing
# it here, before any test captures the streams, keeps a CLI test that imports it
# first from leaving a closed stream behind for the next one that samples.
ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "scenarios"


def bike_journey() -> Funnel:
    """The five-stage journey of the issue's minimal scenario (back edges included)."""
    return Funnel.from_routing(
        {"awareness": 14, "interest": 10, "desire": 7, "conversion": 2, "advocacy": 60},
        {
            "awareness": {"interest": 0.35, "lost": 0.65},
            "interest": {"desire": 0.40, "awareness": 0.20, "lost": 0.40},
            "desire": {"conversion": 0.30, "interest": 0.30, "lost": 0.40},
            "conversion": {"advocacy": 0.30, "lost": 0.70},
            "advocacy": {"lost": 1.0},
        },
        goal="conversion",
    )


@pytest.fixture
def bike_funnel() -> Funnel:
    return bike_journey()


@pytest.fixture
def repeat_funnel() -> Funnel:
    """A journey with a repeat event (self edge on the goal) and a skip."""
    return Funnel.from_rates(
        {
            "visit": {"purchase": 0.05, "lead": 0.2, "lost": 0.3},
            "lead": {"purchase": 0.1, "visit": 0.05, "lost": 0.05},
            "purchase": {"purchase": 0.04, "lost": 0.02},
        },
        goal="purchase",
    )


def exact_step(rates: np.ndarray, dt: float) -> tuple[np.ndarray, np.ndarray]:
    """Event and stay probabilities of the competing-risk step, written out independently.

    Returns ``(event, stay)``: ``event[i, j]`` = P(first event in the step is i→j),
    ``stay[i]`` = P(no event) = exp(−λ_i dt).
    """
    lam = rates.sum(axis=1)
    stay = np.exp(-lam * dt)
    event = np.zeros_like(rates)
    for i in range(len(lam)):
        if lam[i] > 0:
            event[i] = rates[i] / lam[i] * (1 - stay[i])
    return event, stay
