"""`python -m pressflow.cli`: the `pressflow` command."""

from . import main

main()
