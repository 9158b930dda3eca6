"""A cPanel-shaped temporary root for ``ie-cli`` tests.

The quarantine is filled through the real store API on the real SQLite
database; the only stand-in is the re-injection command: the recording
sendmail of :mod:`devtools.recorder`, refusing when told to.
"""
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

from click.testing import CliRunner

from devtools.recorder import install_recorder, read_outbox
from imunifyemail import paths
from imunifyemail.cli import ie_cli
from imunifyemail.core.message import ScriptHeader
from imunifyemail.store import db
from imunifyemail.store.quarantine import NewMessage, Quarantine, StoredMessage

IE_CLI = Path(sys.executable).parent / "ie-cli"
# Yesterday, midnight UTC: mail held then is within `emails list`'s default --since 30d.
T0 = (int(time.time()) // 86400 - 1) * 86400

@dataclass
class Result:
    exit_code: int
    stdout: str
    stderr: str

    def json(self):
        return json.loads(self.stdout)


def make_raw(subject: str = "Hello there", sender: str = "user@demo1.test",
             to: str = "friend@remote.example", extra: str = "", body: str = "Hi!\r\nBye.\r\n") -> bytes:
    return (f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\nDate: Tue, 14 Nov 2023 22:13:20 +0000\r\n"
            f"Message-ID: <{abs(hash((subject, to)))}@demo1.test>\r\nMIME-Version: 1.0\r\n{extra}"
            f"\r\n{body}").encode("utf-8")


class IERoot:
    def __init__(self, root: Path):
        self.root = root
        self.mail_dir = root / "sendmail"
        self.sendmail = self.mail_dir / "sendmail"
        self.outbox = self.mail_dir / "outbox"
        self.outbox.mkdir(parents=True)
        self.fail_flag = self.mail_dir / "fail"
        install_recorder(self.sendmail, self.outbox, self.fail_flag,
                         refusal="451 4.3.0 queue directory not writable", refusal_status=1)
        (root / "etc").mkdir()
        (root / "etc/userdomains").write_text("demo1.test: demo1\ndemo2.test: demo2\n*: nobody\n")
        users = root / "var/cpanel/users"
        users.mkdir(parents=True)
        for user in ("demo1", "demo2", "demo3"):
            (users / user).write_text(f"USER={user}\n")
        self.config_file = paths.system_path(paths.CONFIG_FILE)
        self.config_file.parent.mkdir(parents=True)
        self.write_config(f"reinject:\n  sendmail: {self.sendmail}\n  timeout: 10\n  user: null\n")
        storage = paths.system_path(paths.STORAGE_DIR)
        storage.mkdir(parents=True)
        self.conn = db.connect(paths.system_path(paths.DATABASE))
        self.storage = storage

    def write_config(self, text: str) -> None:
        self.config_file.write_text(text)

    def quarantine(self, at: int = T0) -> Quarantine:
        return Quarantine(self.conn, self.storage, 104857600, clock=lambda: at)

    def add(self, account: str = "demo1", sender: str = "user@demo1.test",
            recipients: Sequence[str] = ("friend@remote.example",), subject: str = "Hello there",
            reasons: Sequence[str] = ("spam",), raw: Optional[bytes] = None, at: int = T0,
            score: Optional[float] = 9.5, action: str = "reject",
            script: ScriptHeader = ScriptHeader()) -> StoredMessage:
        if raw is None:
            raw = make_raw(subject, sender, ", ".join(recipients))
        msg = NewMessage(account=account, sender=sender, recipients=tuple(recipients), subject=subject,
                         reasons=tuple(reasons), header_from=sender, filter_score=score,
                         filter_action=action, script=script)
        return self.quarantine(at).add(msg, raw)

    def ids(self) -> List[str]:
        return [r[0] for r in self.conn.execute("SELECT email_id FROM messages ORDER BY id")]

    def sent(self) -> List[Tuple[List[str], bytes]]:
        """(argv, message) of each call of sendmail that was accepted, oldest first."""
        return [(m.argv, m.message) for m in read_outbox(self.outbox)]

    def fail_sendmail(self, after: Optional[int] = None) -> None:
        """Refuse from now on, or once ``after`` messages were accepted."""
        self.fail_flag.write_text("" if after is None else str(after))

    def invoke(self, *args: str) -> Result:
        """In process, through the same error translation as the console script."""
        runner = CliRunner(mix_stderr=False)
        with runner.isolation() as (out, err):
            code = ie_cli.run(list(args))
            return Result(code, out.getvalue().decode(), err.getvalue().decode())

    def run_script(self, *args: str, prefix: Sequence[str] = ()) -> Result:
        """The installed console script, in a child process."""
        env = dict(os.environ, IMUNIFYEMAIL_ROOT=str(self.root))
        proc = subprocess.run([*prefix, str(IE_CLI), *args], env=env, capture_output=True, text=True,
                              timeout=60)
        return Result(proc.returncode, proc.stdout, proc.stderr)


def assert_error(result: Result, *fragments: str) -> None:
    """One line on stderr starting with "Error:", nothing on stdout, exit 1."""
    assert result.exit_code == 1, result
    assert result.stdout == "", result
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
