from tests.db import fixtures

# Shared fixtures (one PostgreSQL database and one server per database for the whole session).
database_url = fixtures.database_url
postgres_database_url = fixtures.postgres_database_url
sqlite_database_url = fixtures.sqlite_database_url
