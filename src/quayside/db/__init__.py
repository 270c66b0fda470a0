"""Database plumbing shared by tracking and the registry: engine, declarative base, Alembic migrations.

Owns no tables of its own: each component declares its tables on :class:`~quayside.db.base.Base`
and adds revisions to ``migrations/versions``. What the two stores' tables and queries have in
common (``BigId``, :class:`~quayside.db.sql.Lifecycle`, ``now_ms``, ``on_conflict_insert``) is in
:mod:`quayside.db.sql`. Migrations run on first use
(:func:`~quayside.db.engine.get_engine`), so users never run Alembic themselves.

To add a revision after changing tables, from a source checkout::

    python -c "import quayside.tracking.tables; from quayside.db import migrate; \\
        migrate.new_revision('describe the change')"

and review the generated file; the test ``tests/db/test_migrations.py`` fails until the
migrations and the models agree.
"""
