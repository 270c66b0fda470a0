"""``python -m quayside``: the same as the ``quayside`` command."""

from quayside.cli.app import main

main()
