from tests import venvs
from tests.db import fixtures

# Shared fixtures (one PostgreSQL database and one server per database for the whole session).
own_server = fixtures.own_server
postgres_database_url = fixtures.postgres_database_url
postgresql_server = fixtures.postgresql_server
sqlite_server = fixtures.sqlite_server

# The real mlflow client, in a venv of its own (tests/venvs.py).
mlflow_venv = venvs.mlflow_venv
