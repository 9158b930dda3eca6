"""The one place that opens the configuration and the store, for every adapter.

The daemon, ``ie-cli``, ``ie-config status``, the hooks and the web app each
hold one :class:`Context`: the validated config, one SQLite connection, the
quarantine, the Activity Monitor and the filesystem's headroom, all opened
on first use (so a bad config file is reported before the database is
touched, and ``ie-cli version`` opens nothing). ``readonly`` opens the
database read-only; neither it nor ``create=False`` (the web app) creates it. ``releaser`` makes, from the
config, how this process hands a release to the mail server
(:mod:`imunifyemail.ops.release`).
"""
import sqlite3
import time
from pathlib import Path
from typing import Any, Callable, Optional

from . import config, paths
from .errors import Unavailable
from .store import db
from .store.activity import Activity
from .store.confined import acting_as_owner_of
from .store.quarantine import Quarantine
from .store.space import StorageSpace

Clock = Callable[[], float]


class Context:
    def __init__(self, clock: Clock = time.time, readonly: bool = False, cfg: Optional[config.Config] = None,
                 releaser: Optional[Callable[[config.Config], Any]] = None, auto_checkpoint: bool = True,
                 create: bool = True):
        self.clock = clock
        self.readonly = readonly
        self.create = create
        self.auto_checkpoint = auto_checkpoint
        self._config = cfg
        self._conn: Optional[sqlite3.Connection] = None
        self._quarantine: Optional[Quarantine] = None
        self._activity: Optional[Activity] = None
        self._make_releaser = releaser
        self._releaser = None

    @property
    def config(self) -> config.Config:
        if self._config is None:
            self._config = config.load()
        return self._config

    @property
    def storage(self) -> Path:
        return paths.system_path(paths.STORAGE_DIR)

    @property
    def database(self) -> Path:
        return paths.system_path(paths.DATABASE)

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            _ = self.config   # a bad config file is reported before the database is touched
            if self.readonly or not self.create:
                if not self.database.exists():
                    raise Unavailable(f"{self.database}: no quarantine yet: start imunifyemaild "
                                      "(it creates the store)")
            else:
                self.storage.mkdir(parents=True, exist_ok=True)
            # The mail path (auto_checkpoint off) counts passed mail without an fsync each; held mail
            # is written durably whatever the default (store/quarantine.py). Root opens the files as
            # the storage's owner: SQLite follows a link there, and that user could have put one.
            with acting_as_owner_of(self.storage):
                conn = db.connect(self.database, readonly=self.readonly,
                                  synchronous="FULL" if self.auto_checkpoint else "NORMAL")
                conn.execute("PRAGMA schema_version").fetchone()   # opens the -wal and -shm files now
            self._conn = conn if self.auto_checkpoint or self.readonly else db.no_auto_checkpoint(conn)
        return self._conn

    @property
    def space(self) -> StorageSpace:
        return StorageSpace.from_config(self.storage, self.config["quarantine"])

    @property
    def quarantine(self) -> Quarantine:
        if self._quarantine is None:
            self._quarantine = Quarantine(self.conn, self.storage, self.config["quarantine"]["default_limit_bytes"],
                                          clock=self.clock, space=self.space)
        return self._quarantine

    @property
    def activity(self) -> Activity:
        if self._activity is None:
            self._activity = Activity(self.conn, self.clock)
        return self._activity

    @property
    def releaser(self):
        """Made on first use by the factory this process was given (from the config)."""
        if self._releaser is None:
            if self._make_releaser is None:
                raise Unavailable("this process cannot release mail")
            self._releaser = self._make_releaser(self.config)
        return self._releaser

    def now(self) -> int:
        return int(self.clock())

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
            self._quarantine = None
            self._activity = None
