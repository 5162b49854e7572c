"""Plots and reports. Plot functions take a result and ``ax=`` and return the Axes;
they never compute model quantities beyond summarising the result."""
