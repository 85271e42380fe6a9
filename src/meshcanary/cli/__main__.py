"""`python -m meshcanary.cli` runs the `meshcanary` command."""

from meshcanary.cli.app import main

main()
