-- The gateway's tables, SQLite dialect (store/sqlite.py runs this on every start: it only creates what is
-- missing, and `_migrate` adds the columns an older database lacks). A PostgreSQL store keeps the same
-- tables and columns in its own dialect.
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL, hash TEXT NOT NULL, created_at REAL NOT NULL,
    expires_at REAL, revoked_at REAL, last_used_at REAL
);
CREATE TABLE IF NOT EXISTS searches (
    id TEXT PRIMARY KEY, key_id TEXT NOT NULL, created_at REAL NOT NULL, image_sha TEXT NOT NULL,
    image_type TEXT NOT NULL, heatmap_sha TEXT, k INTEGER NOT NULL, cached INTEGER NOT NULL,
    result TEXT NOT NULL, bytes INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS searches_by_key ON searches (key_id, created_at);
CREATE INDEX IF NOT EXISTS searches_by_time ON searches (created_at);
-- which face of which person each search listed: redaction and erasure, and a search key's thumbnails
CREATE TABLE IF NOT EXISTS search_faces (
    search_id TEXT NOT NULL REFERENCES searches (id) ON DELETE CASCADE, person_id TEXT NOT NULL,
    face_id INTEGER NOT NULL, PRIMARY KEY (search_id, person_id, face_id)
);
CREATE INDEX IF NOT EXISTS search_faces_by_face ON search_faces (person_id, face_id);
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    search_id TEXT NOT NULL REFERENCES searches (id) ON DELETE CASCADE,
    key_id TEXT NOT NULL, person_id TEXT NOT NULL, correct INTEGER NOT NULL, comment TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS feedback_by_person ON feedback (person_id);
-- matches per key and UTC day, for the daily quota (deleting searches does not give any back)
CREATE TABLE IF NOT EXISTS key_usage (
    key_id TEXT NOT NULL, day INTEGER NOT NULL, searches INTEGER NOT NULL, PRIMARY KEY (key_id, day)
);
CREATE TABLE IF NOT EXISTS failures (
    id INTEGER PRIMARY KEY AUTOINCREMENT, ts REAL NOT NULL, request_id TEXT NOT NULL, kind TEXT NOT NULL,
    method TEXT NOT NULL, path TEXT NOT NULL, status INTEGER NOT NULL, code TEXT NOT NULL,
    reason TEXT NOT NULL, ms REAL NOT NULL, key_id TEXT
);
CREATE INDEX IF NOT EXISTS failures_by_time ON failures (ts);
