"""Exporters: a Quayside package as another tool's project (``quayside export ...``)."""
