"""A fleet learns together (issue 19, point 5): two servers — two Exims, two daemons, two Rspamds, each
in a network namespace of its own — whose config.yaml points Rspamd's fuzzy storage and Bayes at one
shared Redis (``rspamd.redis.servers``). A campaign the administrator deletes as spam on server A is
held on server B, from another account. With Redis Sentinel, Rspamd finds the master the Sentinel names."""
import tempfile
from pathlib import Path

import pytest

from devtools import samples
from devtools.namespace import Namespace
from devtools.redis import RedisProcess, SentinelProcess, TcpRedis
from devtools.stack import NsRspamd
from devtools.testroot import remove_unless_kept
from devtools.waiting import eventually
from imunifyemail import config
from imunifyemail.core import learning
from imunifyemail.rspamd_controller import Controller

from .conftest import drop_stack, make_stack, settle, sunk, wait_held, wait_sunk

SPAM_SYMBOL = "IMUNIFYEMAIL_FUZZY_SPAM"


@pytest.fixture(scope="module")
def shared_redis(daemon_user):
    base = Path(tempfile.mkdtemp(prefix="ie-fleet-redis-", dir="/tmp"))
    base.chmod(0o755)
    ns = Namespace(net=True).start()   # a host of its own: the servers reach it by its socket only
    redis = RedisProcess(base / "redis", wrap=ns.enter_argv)
    try:
        yield redis.start()
    finally:
        redis.stop()
        ns.stop()
        remove_unless_kept(base)


@pytest.fixture(scope="module")
def fleet(shared_redis):
    servers = []
    try:
        for name in ("a", "b"):
            servers.append(make_stack(f"ie-fleet-{name}-", redis_servers=[str(shared_redis.socket)],
                                      hostname=f"server-{name}.ie-fleet.test"))
        yield servers
    finally:
        for stack in servers:
            drop_stack(stack)


def test_a_campaign_deleted_as_spam_on_server_a_is_held_on_server_b(fleet, shared_redis, token):
    a, b = fleet
    assert a.redis is None and b.redis is None and a.ns.pid != b.ns.pid   # no Redis of their own
    near = samples.campaign("Mr. Fleet Bee", sender=f"{token}@demo2.test", subject=f"Fleet {token} b")
    # Before: server B lets the campaign through.
    b.sendmail(samples.campaign("Mr. Early Bird", sender=f"{token}@demo2.test", subject=f"Fleet {token} early"),
               "-f", f"{token}@demo2.test", "early@remote.example", user="demo2")
    wait_sunk(b, f"Fleet {token} early")
    # Server A: demo1's copy is held for its executable; the administrator deletes it as spam.
    a.sendmail(samples.with_exe(sender=f"{token}@demo1.test", subject=f"Fleet {token} a",
                                body="\n".join(samples.CAMPAIGN) + "\n"),
               "-f", f"{token}@demo1.test", "victim@remote.example", user="demo1")
    [held] = wait_held(a, f"Fleet {token} a")
    out = a.ie_cli("emails", "remove", "--ids", held["email_id"], "--as-spam")
    assert out.stdout.decode().splitlines() == ["learned as spam: 1", "OK"], out
    # Server B knows it once A's fuzzy storage has written it to the shared Redis (every 2 s)...
    eventually(lambda: SPAM_SYMBOL in b.rspamd.scan(near, IP="127.0.0.1", User="probe")["symbols"],
               "server B's Rspamd to know the campaign")
    # ...and holds a near copy from demo2, to another recipient, with a changed line.
    b.sendmail(near, "-f", f"{token}@demo2.test", "other@remote.example", user="demo2")
    [copy] = wait_held(b, f"Fleet {token} b")
    assert copy["account_name"] == "demo2" and copy["reasons"] == ["spam"]
    settle(b)
    assert sunk(b, f"Fleet {token} b") == []
    # Bayes learned in the same shared Redis: server B's controller counts A's lesson (it reads the
    # counts from Redis every 30 s or so).
    def spam_learns() -> int:
        return [s["revision"] for s in b.rspamd.controller_get("/stat")["statfiles"] if s["symbol"] == "BAYES_SPAM"][0]
    eventually(lambda: spam_learns() >= 1, "server B's Bayes to count server A's lesson", timeout=300, interval=1)


@pytest.fixture
def sentinel_site(daemon_user):
    """A Redis master and a Sentinel watching it (master name ``ie-fleet``), in a network namespace of
    their own, and an Rspamd of the production set there whose config.yaml has the Sentinel form, its
    ``servers`` naming a Redis that is not there: only the Sentinel can lead it to the master."""
    base = Path(tempfile.mkdtemp(prefix="ie-fleet-sentinel-", dir="/tmp"))
    base.chmod(0o755)
    ns = Namespace(net=True).start()
    master = TcpRedis(base / "master", ns.enter_argv, 6390)
    sentinel = SentinelProcess(base / "sentinel", ns.enter_argv, 26390, "ie-fleet", 6390)
    redis = config.validate({"rspamd": {"redis": {"servers": ["127.0.0.1:6399"], "sentinels": ["127.0.0.1:26390"],
                                                  "master_name": "ie-fleet", "sentinel_watch_time": 1}}},
                            "config.yaml")["rspamd"]["redis"]
    rspamd = NsRspamd(ns, base / "rspamd", redis=redis)
    try:
        master.start()
        sentinel.start()
        rspamd.start()
        yield master, sentinel, rspamd
    finally:
        rspamd.stop()
        sentinel.stop()
        master.stop()
        ns.stop()
        remove_unless_kept(base)


def test_rspamd_learns_in_the_master_a_sentinel_names(sentinel_site):
    master, sentinel, rspamd = sentinel_site
    assert sentinel.master() == "127.0.0.1 6390"
    controller = Controller(f"unix:{rspamd.controller_socket}", 10)
    raw = samples.campaign("Mr. Sentinel Watcher")
    # Until Rspamd has asked the Sentinel (at its start, then every second) its fuzzy storage fails.
    eventually(lambda: all(learning.answered_ok(*controller.post(path, raw, headers))
                           for path, headers in learning.REQUESTS[learning.LEARN_SPAM]),
               "Rspamd to learn through the Sentinel's master", interval=0.5)
    near = samples.campaign("Mr. Near Sentinel")
    eventually(lambda: SPAM_SYMBOL in rspamd.scan(near, IP="127.0.0.1", User="probe")["symbols"],
               "a near copy to be known")
    assert int(master.command_line("DBSIZE")) > 0   # the hashes and Bayes tokens are in the master
