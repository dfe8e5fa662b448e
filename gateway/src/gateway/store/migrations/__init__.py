"""The gateway's schema history as alembic migrations, one for both backends (SQLAlchemy operations and
dialect-neutral SQL); `gateway.store.schema` runs them. Add a revision under versions/ with
`alembic -c gateway/src/gateway/store/migrations/alembic.ini revision -m "..."`."""
