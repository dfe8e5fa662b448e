"""The bytes each key's stored searches keep, as a running total the database maintains itself.

The storage quota is checked before every match. Summing `searches.bytes` over a key's searches made that
check grow with the key's history (bench/quota_check.py: milliseconds at 10,000 searches of one key).
`key_storage` holds the sum instead; triggers on `searches` keep it right on every path that adds,
deletes or changes a search (a match, erasure, retention, `gateway db copy`), on both backends, so no
code path can forget it. Existing rows are summed once here.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SQLITE_TRIGGERS = {
    "searches_bytes_added": """AFTER INSERT ON searches BEGIN
        INSERT OR IGNORE INTO key_storage (key_id, bytes) VALUES (NEW.key_id, 0);
        UPDATE key_storage SET bytes = bytes + NEW.bytes WHERE key_id = NEW.key_id; END""",
    "searches_bytes_changed": """AFTER UPDATE OF bytes, key_id ON searches BEGIN
        UPDATE key_storage SET bytes = bytes - OLD.bytes WHERE key_id = OLD.key_id;
        INSERT OR IGNORE INTO key_storage (key_id, bytes) VALUES (NEW.key_id, 0);
        UPDATE key_storage SET bytes = bytes + NEW.bytes WHERE key_id = NEW.key_id; END""",
    "searches_bytes_removed": """AFTER DELETE ON searches BEGIN
        UPDATE key_storage SET bytes = bytes - OLD.bytes WHERE key_id = OLD.key_id; END""",
}
POSTGRES_FUNCTION = """CREATE FUNCTION searches_follow_bytes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE key_storage SET bytes = bytes - OLD.bytes WHERE key_id = OLD.key_id;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO key_storage (key_id, bytes) VALUES (NEW.key_id, NEW.bytes)
        ON CONFLICT (key_id) DO UPDATE SET bytes = key_storage.bytes + EXCLUDED.bytes;
    END IF;
    RETURN NULL;
END $$"""


def upgrade() -> None:
    op.create_table(
        "key_storage",
        sa.Column("key_id", sa.Text, primary_key=True),
        sa.Column("bytes", sa.BigInteger, nullable=False),
    )
    op.execute("INSERT INTO key_storage SELECT key_id, SUM(bytes) FROM searches GROUP BY key_id")
    if op.get_bind().dialect.name == "sqlite":
        for name, body in SQLITE_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER {name} {body}")
    else:
        op.execute(POSTGRES_FUNCTION)
        op.execute(
            "CREATE TRIGGER searches_bytes AFTER INSERT OR DELETE OR UPDATE OF bytes, key_id ON searches"
            " FOR EACH ROW EXECUTE FUNCTION searches_follow_bytes()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER {name}")
    else:
        op.execute("DROP TRIGGER searches_bytes ON searches")
        op.execute("DROP FUNCTION searches_follow_bytes()")
    op.drop_table("key_storage")
