"""The ``quayside`` command line: thin commands that parse, call the domain, and print."""
