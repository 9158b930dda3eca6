"""A recording stand-in for Exim's ``sendmail``, for tests and the sandbox
until the Exim integration is set up: each call leaves a directory with the
argv and the message, or fails like a broken MTA while a flag file exists."""
from pathlib import Path

SCRIPT = """#!/bin/bash
if [ -e "{fail}" ]; then echo "sendmail: cannot write spool (simulated)" >&2; exit 75; fi
id="$(date +%s%N)-$$"
tmp="{outbox}/.tmp-$id"
mkdir "$tmp" || exit 75
printf '%s\\n' "$@" > "$tmp/argv"
cat > "$tmp/message" || exit 75
mv "$tmp" "{outbox}/$id"
"""


def install_recorder(path: Path, outbox: Path, fail_flag: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(SCRIPT.format(fail=fail_flag, outbox=outbox))
    path.chmod(0o755)
