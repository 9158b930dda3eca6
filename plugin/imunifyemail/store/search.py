"""The quarantine's search index: SQLite FTS5 with the trigram tokenizer.

Substring search over subject, envelope sender and recipients without a
scan of every row: the index is an external-content FTS5 table kept by
triggers, so it changes in the same transaction as the message row. A
trigram index answers substrings of three characters or more; shorter
ones, and SQLite builds without the trigram tokenizer (before 3.34), fall
back to a ``LIKE`` scan — slower, same answers.
"""
import sqlite3
from typing import Optional

TABLE = "messages_search"
COLUMNS = ("sender", "subject", "recipients")


def trigram_supported(conn: sqlite3.Connection) -> bool:
    try:
        conn.execute("CREATE VIRTUAL TABLE temp.trigram_probe USING fts5(x, tokenize='trigram')")
    except sqlite3.OperationalError:
        return False
    conn.execute("DROP TABLE temp.trigram_probe")
    return True


def create_index(conn: sqlite3.Connection) -> None:
    """Create and fill the index (a migration step); nothing when trigram is unavailable."""
    if not trigram_supported(conn):
        return
    cols = ", ".join(COLUMNS)
    new = ", ".join(f"new.{c}" for c in COLUMNS)
    old = ", ".join(f"old.{c}" for c in COLUMNS)
    conn.execute(f"CREATE VIRTUAL TABLE {TABLE} USING fts5({cols}, content='messages', content_rowid='id',"
                 " tokenize='trigram')")
    conn.execute(f"CREATE TRIGGER {TABLE}_insert AFTER INSERT ON messages BEGIN"
                 f" INSERT INTO {TABLE}(rowid, {cols}) VALUES (new.id, {new}); END")
    conn.execute(f"CREATE TRIGGER {TABLE}_delete AFTER DELETE ON messages BEGIN"
                 f" INSERT INTO {TABLE}({TABLE}, rowid, {cols}) VALUES ('delete', old.id, {old}); END")
    conn.execute(f"INSERT INTO {TABLE}({TABLE}) VALUES ('rebuild')")


def available(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (TABLE,)).fetchone() is not None


def phrase(text: str) -> Optional[str]:
    """An FTS5 query matching ``text`` as a substring, or None if the index cannot answer it."""
    if len(text) < 3:
        return None
    return '"' + text.replace('"', '""') + '"'
