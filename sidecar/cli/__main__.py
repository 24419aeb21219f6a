"""`python -m sidecar.cli`: the same command line as the `forewarn` script."""

from sidecar.cli.main import main

main()
