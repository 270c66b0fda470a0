"""Database plumbing shared by tracking and the registry: engine, declarative base, Alembic migrations.

Owns no tables of its own. Arrives with the tracking store.
"""
