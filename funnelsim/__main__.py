"""``python -m funnelsim``: the same command line as ``funnelsim``."""

from funnelsim.cli import main

main()
