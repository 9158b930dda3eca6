"""The files Rspamd's learning needs beside our shipped settings, written by ``ie-config rspamd-learning``.

What the administrator teaches (WHM "Delete as spam", "Release as not spam"; ``ie-cli emails delete
--as-spam``, ``release --not-spam``) goes through Rspamd's controller into its fuzzy storage and its
Bayes classifier, both kept in Redis. Our shipped ``override.d/worker-fuzzy.inc``,
``local.d/fuzzy_check.conf`` and ``local.d/classifier-bayes.conf`` (rpm/rspamd/) include these files
from ``$LOCAL_CONFDIR`` (``/etc/rspamd``):

* ``imunifyemail-redis.conf`` — config.yaml ``rspamd.redis``: one setting for both stores, so that a
  fleet points them at one shared Redis (or its Sentinels) and a campaign deleted as spam on one server
  is held on all. Rspamd's own Redis options (lualib/lua_redis.lua): ``servers``, and with Sentinel
  ``sentinels``, ``sentinel_masters_pattern`` (a Lua pattern: the master's name exactly) and
  ``sentinel_watch_time``.
* the fuzzy storage's keys. Rspamd 3.4's fuzzy storage speaks UDP only, on 127.0.0.1, and by default
  lets anyone there write (``allow_update = ["localhost"]``): any local user could whitelist their own
  spam or blacklist someone else's mail. So the storage takes writes only from a client that encrypts
  to its keypair (``allow_update_keys``) and answers only encrypted requests (``encrypted_only``), and
  that keypair's public key is given only to our rule: ``imunifyemail-fuzzy-storage.conf`` (the
  keypair), ``imunifyemail-fuzzy-writers.map`` (its id) and ``imunifyemail-fuzzy-rule.conf`` (its
  public key), each 0640 root:_rspamd. Made once, kept across runs; without them no lesson is written
  (and none is read).
"""
import grp
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from . import admin_files, paths
from .errors import ActionError

REDIS_FILE = "imunifyemail-redis.conf"
STORAGE_FILE = "imunifyemail-fuzzy-storage.conf"
WRITERS_FILE = "imunifyemail-fuzzy-writers.map"
RULE_FILE = "imunifyemail-fuzzy-rule.conf"
RSPAMD_GROUP = "_rspamd"
SECRET_MODE = 0o640
_LUA_MAGIC = "^$()%.[]*+-?"
_HEADER = "# Written by `ie-config rspamd-learning` (Imunify Email): {what}\n"


class LearningFilesError(ActionError):
    """Nothing was changed; says what failed."""


def lua_exact(name: str) -> str:
    """A Lua pattern matching ``name`` and nothing else."""
    return "^" + "".join(f"%{c}" if c in _LUA_MAGIC else c for c in name) + "$"


def render_redis(redis: dict) -> str:
    """``imunifyemail-redis.conf`` for config.yaml's ``rspamd.redis`` (validated by config.py: its values
    hold no quote, backslash, dollar or space)."""
    lines = [_HEADER.format(what="where Rspamd's fuzzy storage and Bayes keep what the administrator "
                                 "taught.").rstrip(),
             "# From /etc/imunifyemail/config.yaml rspamd.redis: change it there, then run the command again.",
             f"servers = \"{','.join(redis['servers'])}\";"]
    if redis["sentinels"]:
        lines += [f"sentinels = \"{','.join(redis['sentinels'])}\";",
                  f"sentinel_masters_pattern = \"{lua_exact(redis['master_name'])}\";",
                  f"sentinel_watch_time = {int(redis['sentinel_watch_time'])};"]
    if redis["db"]:
        lines.append(f"db = \"{int(redis['db'])}\";")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Keypair:
    pubkey: str
    privkey: str
    id: str


_KEY_FIELD = re.compile(r'^\s*(pubkey|privkey|id)\s*=\s*"([a-z0-9]+)";', re.M)


def parse_keypair(text: str) -> Optional[Keypair]:
    fields = dict(_KEY_FIELD.findall(text))
    if not {"pubkey", "privkey", "id"} <= set(fields):
        return None
    return Keypair(fields["pubkey"], fields["privkey"], fields["id"])


def new_keypair(rspamadm: str = "rspamadm") -> Keypair:
    try:
        out = subprocess.run([rspamadm, "keypair", "-u"], capture_output=True, check=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise LearningFilesError(f"cannot make the fuzzy storage's keypair with `{rspamadm} keypair -u`: "
                                 f"{exc}") from None
    pair = parse_keypair(out.decode("ascii", "replace"))
    if pair is None:
        raise LearningFilesError(f"`{rspamadm} keypair -u` printed no keypair")
    return pair


def render_keys(pair: Keypair) -> Dict[str, str]:
    """The storage's, the writers' and the rule's files for ``pair``."""
    return {
        STORAGE_FILE: _HEADER.format(what="the local fuzzy storage's keypair (secret).") +
        "# Writes only from a client encrypting to this keypair (worker-fuzzy.inc empties allow_update);\n"
        "# no plain requests at all.\n"
        f'allow_update_keys = "$LOCAL_CONFDIR/{WRITERS_FILE}";\n'
        "encrypted_only = true;\n"
        "keypair {\n"
        f'  pubkey = "{pair.pubkey}";\n  privkey = "{pair.privkey}";\n  id = "{pair.id}";\n'
        '  algorithm = "curve25519";\n  type = "kex";\n  encoding = "base32";\n}\n',
        WRITERS_FILE: _HEADER.format(what="who may write to the local fuzzy storage (secret).") +
        f"{pair.id}\n",
        RULE_FILE: _HEADER.format(what="the key of the local fuzzy storage (secret: whoever knows it "
                                       "can write there).") +
        f'encryption_key = "{pair.pubkey}";\n',
    }


def etc_dir() -> Path:
    return paths.system_path(paths.RSPAMD_ETC)


def _read(path: Path) -> Optional[str]:
    try:
        return path.read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise LearningFilesError(f"{path}: cannot be read ({exc.strerror})") from None


def wanted(redis: dict, etc: Path, make_keypair=new_keypair) -> Dict[str, Tuple[str, bool]]:
    """name -> (text, secret): the keypair is the one already there, else a new one."""
    pair = parse_keypair(_read(etc / STORAGE_FILE) or "")
    files = {REDIS_FILE: (render_redis(redis), False)}
    files.update({name: (text, True) for name, text in render_keys(pair or make_keypair()).items()})
    return files


def install(redis: dict, etc: Optional[Path] = None, make_keypair=new_keypair) -> List[Path]:
    """Write the files that differ (secret ones 0640 root:_rspamd); the paths changed. Rspamd must be
    restarted to read them."""
    etc = etc or etc_dir()
    if not etc.is_dir():
        raise LearningFilesError(f"{etc}: not found: is Rspamd installed?")
    group = _rspamd_gid()
    changed = []
    for name, (text, secret) in wanted(redis, etc, make_keypair).items():
        path = etc / name
        if _read(path) == text and (not secret or _secret_ok(path, group)):
            continue
        try:
            admin_files.replace(path, text)
            if secret:
                os.chmod(path, SECRET_MODE)
                if os.geteuid() == 0:
                    os.chown(path, 0, group)
        except OSError as exc:
            raise LearningFilesError(f"{path}: cannot be written ({exc.strerror})") from None
        changed.append(path)
    return changed


def remove(etc: Optional[Path] = None) -> List[Path]:
    """Delete the files (the RPM's erase: our shipped files that include them are gone too); those deleted."""
    etc = etc or etc_dir()
    gone = []
    for name in (REDIS_FILE, STORAGE_FILE, WRITERS_FILE, RULE_FILE):
        if not os.path.lexists(etc / name):
            continue
        try:
            admin_files.delete(etc / name)
        except OSError as exc:
            raise LearningFilesError(f"{etc / name}: cannot be deleted ({exc.strerror})") from None
        gone.append(etc / name)
    return gone


def _rspamd_gid() -> int:
    try:
        return grp.getgrnam(RSPAMD_GROUP).gr_gid
    except KeyError:
        raise LearningFilesError(f"group {RSPAMD_GROUP} not found: is Rspamd installed?") from None


def _secret_ok(path: Path, gid: int) -> bool:
    st = path.stat()
    return st.st_mode & 0o777 == SECRET_MODE and (os.geteuid() != 0 or (st.st_uid, st.st_gid) == (0, gid))
