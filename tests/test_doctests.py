"""The examples in docstrings are run as tests."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "funnelsim.funnel",
    "funnelsim.dynamics",
    "funnelsim.errors",
    "funnelsim.engines",
    "funnelsim.inference.fitted",
    "funnelsim.inference.gibbs",
    "funnelsim.inference.frailty",
    "funnelsim.inference.repeat",
    "funnelsim.inference.rate_classes",
    "funnelsim.inference.journeys",
    "funnelsim.inference.campaign_data",
    "funnelsim.inference.api",
    "funnelsim.inference.flows",
    "funnelsim.inference.kalman",
    "funnelsim.inference.count_priors",
    "funnelsim.data.counts",
    "funnelsim.data.synthetic",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
