"""The containment count, as stored (real SQLite): which holds it counts, over which window, up to
what, and that it reads only its partial index (each spam hold asks it)."""
from imunifyemail.core import containment as rules
from imunifyemail.store import db, events
from imunifyemail.store.containment import held_since

T0 = 1_800_000_000


def test_only_spam_and_winexec_holds_of_the_account_after_since_count_up_to_at_most(tmp_path):
    conn = db.connect(tmp_path / "q.db")
    with db.transaction(conn):
        for i, (account, kind, reasons) in enumerate([
                ("demo1", events.HELD, ("spam",)), ("demo1", events.HELD, ("winexec", "ratelimit")),
                ("demo1", events.HELD, ("ratelimit",)), ("demo1", events.HELD, ("blocked",)),
                ("demo1", events.CONTAINED, ("spam",)), ("demo2", events.HELD, ("spam",)),
                ("demo1", events.HELD, ("spamlike",)), ("demo1", events.HELD, ("spam",))]):
            events.insert(conn, T0 + i, kind, account, reasons)
    assert held_since(conn, "demo1", T0 - 1, 100) == 3
    assert held_since(conn, "demo1", T0, 100) == 2          # after ``since``, not at it
    assert held_since(conn, "demo1", T0 - 1, 2) == 2        # counted up to at_most
    assert held_since(conn, "demo2", T0 - 1, 100) == 1
    plan = " ".join(r[3] for r in conn.execute(
        f"EXPLAIN QUERY PLAN SELECT 1 FROM events INDEXED BY events_contained_by WHERE account = ? AND at > ? AND {db.CONTAINMENT_HOLDS}",
        ("demo1", T0)))
    assert "COVERING INDEX events_contained_by" in plan, plan
    assert all(f"',{r},'" in db.CONTAINMENT_HOLDS.replace("%", "") for r in rules.COUNTED)
    conn.close()
