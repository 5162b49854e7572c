"""Scenario files: load and validate (:func:`load_scenario`), run (:func:`run`),
write outputs (:func:`write_outputs`)."""

from funnelsim.scenario.loader import load_scenario, scenario_warnings, validate_file
from funnelsim.scenario.outputs import write_outputs
from funnelsim.scenario.runner import build_funnel, compile_scenario, resolved_scenario, run
from funnelsim.scenario.schema import Scenario, json_schema

__all__ = [
    "Scenario",
    "build_funnel",
    "compile_scenario",
    "json_schema",
    "load_scenario",
    "resolved_scenario",
    "run",
    "scenario_warnings",
    "validate_file",
    "write_outputs",
]
