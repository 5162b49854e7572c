"""funnelsim: simulate and forecast customer-journey (marketing funnel) dynamics."""

__version__ = "0.1.0"

from funnelsim.funnel import LOST, Funnel, list_presets, load_preset  # noqa: E402

__all__ = ["__version__", "LOST", "Funnel", "list_presets", "load_preset"]
