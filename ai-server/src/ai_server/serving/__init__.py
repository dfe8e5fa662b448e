"""The inference service: settings, the face pipeline, the gallery and the HTTP API.

`settings` (every AI_SERVER_* variable), `errors` (the one error type and its codes), `telemetry` (metrics,
JSON logs), `workers` (readiness across gunicorn workers), `service` (engine + gallery of one process),
`enrol` (photos -> stored faces, bulk enrolment), `gunicorn_conf`; the packages `pipeline` (decode, detect
and align, batch, embed), `gallery` (SQLite, files, FAISS, kept consistent) and `http` (the Flask app).

Never imports `research`: the serving image has none of it.
"""
