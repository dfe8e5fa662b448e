"""The public API in front of the ai-server: validation, API keys, stored searches, cache, limits."""
