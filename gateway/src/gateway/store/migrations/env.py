"""Alembic's entry point: runs the migrations on the connection `gateway.store.schema` hands over in
`config.attributes["connection"]` (never a URL from a file), in one transaction where the backend has
transactional DDL. On PostgreSQL an advisory lock is taken first, so gateways starting at the same time
against one database upgrade it one after the other instead of racing to create the same tables."""

from alembic import context
from sqlalchemy import text

MIGRATION_LOCK = 7_301_018  # pg_advisory_xact_lock key: any constant the gateway alone uses


def run() -> None:
    connection = context.config.attributes["connection"]
    context.configure(connection=connection, transaction_per_migration=False)
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        context.run_migrations()


run()
