-- The gateway's tables, SQLite dialect (store/sqlite.py runs this on every start: it only creates what is
-- missing). A PostgreSQL store keeps the same tables and columns in its own dialect.
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL, hash TEXT NOT NULL, created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS searches (
    id TEXT PRIMARY KEY, key_id TEXT NOT NULL, created_at REAL NOT NULL, image_sha TEXT NOT NULL,
    image_type TEXT NOT NULL, heatmap_sha TEXT, k INTEGER NOT NULL, cached INTEGER NOT NULL,
    result TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS searches_by_key ON searches (key_id, created_at);
CREATE INDEX IF NOT EXISTS searches_by_time ON searches (created_at);
CREATE TABLE IF NOT EXISTS search_persons (
    search_id TEXT NOT NULL REFERENCES searches (id) ON DELETE CASCADE, person_id TEXT NOT NULL,
    PRIMARY KEY (search_id, person_id)
);
CREATE INDEX IF NOT EXISTS search_persons_by_person ON search_persons (person_id);
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    search_id TEXT NOT NULL REFERENCES searches (id) ON DELETE CASCADE,
    key_id TEXT NOT NULL, person_id TEXT NOT NULL, correct INTEGER NOT NULL, comment TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS failures (
    id INTEGER PRIMARY KEY AUTOINCREMENT, ts REAL NOT NULL, request_id TEXT NOT NULL, kind TEXT NOT NULL,
    method TEXT NOT NULL, path TEXT NOT NULL, status INTEGER NOT NULL, code TEXT NOT NULL,
    reason TEXT NOT NULL, ms REAL NOT NULL, key_id TEXT
);
CREATE INDEX IF NOT EXISTS failures_by_time ON failures (ts);
