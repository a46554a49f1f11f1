"""`python -m eligib`: the same command as `eligib`."""

from eligib.launcher import launch

launch()
