"""Alembic migrations of every Quayside table; a package so that it ships inside the wheel."""
