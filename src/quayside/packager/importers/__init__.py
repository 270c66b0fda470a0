"""Importers: other tools' model formats turned into Quayside packages (``quayside import ...``)."""
