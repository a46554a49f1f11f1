"""`python -m eligib`: the same command as `eligib`."""

from eligib.cli import main

main()
