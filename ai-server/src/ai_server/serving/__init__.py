"""The inference service: settings, the face pipeline, the gallery and the HTTP API.

Never imports `research`: the serving image has none of it.
"""
