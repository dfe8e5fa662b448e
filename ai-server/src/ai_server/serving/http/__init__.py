"""The HTTP layer: the app factory, one blueprint per group of endpoints, and the one mapping of
service errors to HTTP statuses and the JSON error envelope."""
