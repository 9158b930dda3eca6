"""Durable state: the quarantine (message files + SQLite metadata) and the
runtime settings (whitelist, filter settings, account states)."""
