"""The schema as it was before migrations: api keys, searches with the faces they listed, feedback, the
daily usage per key and the failure log.

Idempotent on purpose: a SQLite database made by a gateway before alembic has these tables and no
alembic_version; running this revision on it creates nothing twice, adds the columns the very first
gateways lacked and fills in the search-face links they never kept (what `PRAGMA user_version` 2 used to
mark), and then alembic records the revision. A fresh database of either backend just gets the tables.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# columns the first gateways' SQLite databases did not have yet
LATER_COLUMNS = {
    "api_keys": [("expires_at", sa.Float), ("revoked_at", sa.Float), ("last_used_at", sa.Float)],
    "searches": [("bytes", sa.Integer)],
}
LINKS_FROM_RESULTS = """
INSERT OR IGNORE INTO search_faces (search_id, person_id, face_id) SELECT s.id,
json_extract(m.value, '$.person_id'), json_extract(m.value, '$.face_id')
FROM searches s, json_each(s.result, '$.matches') m WHERE json_extract(m.value, '$.deleted') IS NOT 1
"""


def upgrade() -> None:
    bind = op.get_bind()
    legacy = bind.dialect.name == "sqlite" and sa.inspect(bind).has_table("searches")
    if legacy:
        _add_later_columns(bind)
    _create_tables()
    if legacy and bind.exec_driver_sql("PRAGMA user_version").scalar() < 2:
        op.execute(LINKS_FROM_RESULTS)
        op.execute("DROP TABLE IF EXISTS search_persons")


def _add_later_columns(bind) -> None:
    inspector = sa.inspect(bind)
    for table, columns in LATER_COLUMNS.items():
        present = {c["name"] for c in inspector.get_columns(table)} if inspector.has_table(table) else None
        for name, kind in columns:
            if present is not None and name not in present:
                default = sa.text("0") if name == "bytes" else None
                op.add_column(table, sa.Column(name, kind, nullable=default is None, server_default=default))


def _create_tables() -> None:
    text, real, integer = sa.Text, sa.Float, sa.Integer
    op.create_table(
        "api_keys",
        sa.Column("id", text, primary_key=True),
        *[sa.Column(c, text, nullable=False) for c in ("name", "role", "hash")],
        sa.Column("created_at", real, nullable=False),
        *[sa.Column(c, real) for c in ("expires_at", "revoked_at", "last_used_at")],
        if_not_exists=True,
    )
    op.create_table(
        "searches",
        sa.Column("id", text, primary_key=True),
        sa.Column("key_id", text, nullable=False),
        sa.Column("created_at", real, nullable=False),
        sa.Column("image_sha", text, nullable=False),
        sa.Column("image_type", text, nullable=False),
        sa.Column("heatmap_sha", text),
        sa.Column("k", integer, nullable=False),
        sa.Column("cached", integer, nullable=False),
        sa.Column("result", text, nullable=False),
        sa.Column("bytes", integer, nullable=False, server_default=sa.text("0")),
        if_not_exists=True,
    )
    op.create_index("searches_by_key", "searches", ["key_id", "created_at"], if_not_exists=True)
    op.create_index("searches_by_time", "searches", ["created_at"], if_not_exists=True)
    # which face of which person each search listed: redaction and erasure, and a search key's thumbnails
    op.create_table(
        "search_faces",
        sa.Column("search_id", text, _search_link(), primary_key=True),
        sa.Column("person_id", text, primary_key=True),
        sa.Column("face_id", integer, primary_key=True, autoincrement=False),
        if_not_exists=True,
    )
    op.create_index("search_faces_by_face", "search_faces", ["person_id", "face_id"], if_not_exists=True)
    op.create_table(
        "feedback",
        sa.Column("id", integer, primary_key=True, autoincrement=True),
        sa.Column("search_id", text, _search_link(), nullable=False),
        *[sa.Column(c, text, nullable=False) for c in ("key_id", "person_id")],
        sa.Column("correct", integer, nullable=False),
        sa.Column("comment", text, nullable=False),
        sa.Column("created_at", real, nullable=False),
        sqlite_autoincrement=True,
        if_not_exists=True,
    )
    op.create_index("feedback_by_person", "feedback", ["person_id"], if_not_exists=True)
    # matches per key and UTC day, for the daily quota (deleting searches does not give any back)
    op.create_table(
        "key_usage",
        sa.Column("key_id", text, primary_key=True),
        sa.Column("day", integer, primary_key=True, autoincrement=False),
        sa.Column("searches", integer, nullable=False),
        if_not_exists=True,
    )
    _create_failures()


def _search_link() -> sa.ForeignKey:
    return sa.ForeignKey("searches.id", ondelete="CASCADE")


def _create_failures() -> None:
    text = sa.Text
    op.create_table(
        "failures",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("ts", sa.Float, nullable=False),
        *[sa.Column(c, text, nullable=False) for c in ("request_id", "kind", "method", "path")],
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("code", text, nullable=False),
        sa.Column("reason", text, nullable=False),
        sa.Column("ms", sa.Float, nullable=False),
        sa.Column("key_id", text),
        sqlite_autoincrement=True,
        if_not_exists=True,
    )
    op.create_index("failures_by_time", "failures", ["ts"], if_not_exists=True)


def downgrade() -> None:
    for table in ("failures", "key_usage", "feedback", "search_faces", "searches", "api_keys"):
        op.drop_table(table)
