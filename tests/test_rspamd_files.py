"""Our Rspamd settings in /etc/rspamd/{local.d,override.d} beside the administrator's
(imunifyemail.rspamd_files): the block as text, then on real files in a temporary tree — new files,
the administrator's kept byte for byte (mode, owner, links), idempotent, removal restoring exactly,
refusals that change nothing. What Rspamd makes of the result: tests/test_rpm_rspamd.py."""
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from devtools.users import ensure_hosted_user
from imunifyemail import marked_blocks, paths, rspamd_files
from imunifyemail.cli import ie_cli, ie_config

REPO = Path(__file__).resolve().parent.parent
SHIPPED = len([f for sub in rspamd_files.PRIORITIES for f in (REPO / "rpm/rspamd" / sub).iterdir()])
LINE = '.include(try=false; priority=2; duplicate=merge) "/usr/share/imunifyemail/rspamd/local.d/options.inc"\n'

ADMIN_TEXTS = [
    "task_timeout = 30s;\nmax_urls = 5;\n",
    "max_urls = 5;",                                           # no final newline
    "# CRLF\r\nmax_urls = 5;\r\n",
    "",                                                        # an empty file of the administrator's
    "bytes: \udcff\udcfe not UTF-8\n",                         # as read with surrogateescape
    "# BEGIN something else\nx = 1;\n",                        # someone else's markers are text
]


@pytest.mark.parametrize("text", ADMIN_TEXTS)
def test_the_administrators_text_is_kept_byte_for_byte(text):
    ours = rspamd_files.with_ours(text, LINE)
    assert ours.startswith(text.rstrip("\n") if not text.endswith("\n") else text)
    assert LINE in ours and marked_blocks.present(ours) == ["rspamd"]
    assert rspamd_files.with_ours(ours, LINE) is ours                # idempotent: nothing to write
    assert rspamd_files.without_ours(ours) == text                   # erase: exactly as before
    assert ours.endswith("\n") == (text.endswith("\n") or text == "")


def test_a_file_we_make_holds_only_our_block_and_goes_with_it():
    ours = rspamd_files.with_ours(None, LINE)
    assert ours.splitlines() == [f"# BEGIN imunifyemail rspamd ({rspamd_files.NOTE_MADE})", LINE.strip(),
                                 "# END imunifyemail rspamd"]
    assert rspamd_files.with_ours(ours, LINE) is ours
    assert rspamd_files.without_ours(ours) is None
    # ...unless the administrator added lines to it since: those stay
    assert rspamd_files.without_ours("count = 4;\n" + ours) == "count = 4;\n"
    assert rspamd_files.without_ours(ours + "count = 4;\n") == "count = 4;\n"


def test_our_block_anywhere_in_the_file_is_left_where_it_is_and_a_stale_one_is_replaced():
    moved = rspamd_files.with_ours("a = 1;\n", LINE) + "b = 2;\n"   # the administrator wrote after it
    assert rspamd_files.with_ours(moved, LINE) is moved
    newer = LINE.replace("options.inc", "options-2.inc")
    updated = rspamd_files.with_ours(moved, newer)
    assert updated == "a = 1;\nb = 2;\n" + marked_blocks.render("rspamd", rspamd_files.NOTE_ADDED, newer)


def test_a_block_without_its_end_line_is_refused():
    broken = rspamd_files.with_ours("a = 1;\n", LINE).replace("# END imunifyemail rspamd\n", "")
    with pytest.raises(marked_blocks.BlockError, match="no END line"):
        rspamd_files.without_ours(broken)
    with pytest.raises(marked_blocks.BlockError, match="no END line"):
        rspamd_files.with_ours(broken, LINE)


def test_an_include_path_rspamd_would_misread_is_refused():
    assert rspamd_files.include(Path("/usr/share/x"), "override.d", "worker-normal.inc") == \
        '.include(try=false; priority=15) "/usr/share/x/override.d/worker-normal.inc"\n'
    for bad in ('/usr/share/x"y', "/usr/$HOME", "relative"):
        with pytest.raises(rspamd_files.RspamdFilesError, match="not a path"):
            rspamd_files.include(Path(bad), "local.d", "options.inc")


# -- on real files ---------------------------------------------------------------------------------

def package_share(base: Path) -> Path:
    """The package's /usr/share/imunifyemail/rspamd: rpm/rspamd's two directories."""
    share = base / "usr/share/imunifyemail/rspamd"
    for sub in rspamd_files.PRIORITIES:
        shutil.copytree(REPO / "rpm/rspamd" / sub, share / sub)
    return share


def snapshot(etc: Path) -> dict:
    """Every entry under ``etc``: bytes, mode, owner, inode (a file), target (a link)."""
    seen = {}
    for p in sorted(etc.rglob("*")):
        st = os.lstat(p)
        if p.is_symlink():
            seen[str(p)] = ("link", os.readlink(p))
        elif p.is_file():
            seen[str(p)] = (p.read_bytes(), st.st_mode, st.st_uid, st.st_gid, st.st_ino)
        else:
            seen[str(p)] = ("dir", st.st_mode)
    return seen


@pytest.fixture
def server(tmp_path):
    """An /etc/rspamd with the administrator's own files: options.inc (0640, a hosted user's group,
    no final newline), greylist.conf through a symbolic link, a worker file we do not ship."""
    etc = tmp_path / "etc/rspamd"
    (etc / "local.d").mkdir(parents=True)
    (etc / "override.d").mkdir()
    options = etc / "local.d/options.inc"
    options.write_bytes(b"# mine\nmax_urls = 5;")
    options.chmod(0o640)
    gid = ensure_hosted_user("demo1").pw_gid
    os.chown(options, 0, gid)
    (tmp_path / "managed").mkdir()
    (tmp_path / "managed/greylist.conf").write_text("enabled = true;\n")
    (etc / "local.d/greylist.conf").symlink_to(tmp_path / "managed/greylist.conf")
    (etc / "local.d/worker-normal.inc").write_text("count = 2;\n")
    return etc, package_share(tmp_path), tmp_path


def test_install_then_remove_leaves_every_administrators_file_as_it_was(server):
    etc, share, base = server
    before, managed = snapshot(etc), (base / "managed/greylist.conf").read_bytes()
    changes = rspamd_files.install(etc, share)
    shipped = sorted(f"{sub}/{f.name}" for sub in rspamd_files.PRIORITIES for f in (share / sub).iterdir())
    assert sorted(str(c.path.relative_to(etc)) for c in changes) == shipped
    options = etc / "local.d/options.inc"
    assert options.read_bytes().startswith(b"# mine\nmax_urls = 5;\n# BEGIN imunifyemail rspamd")
    st = options.stat()
    assert (st.st_mode & 0o7777, st.st_gid) == (0o640, ensure_hosted_user("demo1").pw_gid)
    assert (etc / "local.d/greylist.conf").is_symlink()                   # the link stays, its file has ours
    assert str(share / "local.d/greylist.conf") in (base / "managed/greylist.conf").read_text()
    assert (etc / "local.d/worker-normal.inc").read_text() == "count = 2;\n"   # not ours: untouched
    made = etc / "override.d/worker-normal.inc"
    assert made.read_text() == rspamd_files.with_ours(None, rspamd_files.include(share, "override.d",
                                                                                 "worker-normal.inc"))
    assert made.stat().st_mode & 0o777 == 0o644

    installed = snapshot(etc)
    assert rspamd_files.install(etc, share) == []                          # idempotent: not even rewritten
    assert snapshot(etc) == installed

    removed = rspamd_files.remove(etc)
    assert len(removed) == len(changes)
    after = snapshot(etc)
    assert {k: v[:4] for k, v in after.items()} == {k: v[:4] for k, v in before.items()}   # bytes, mode, owner
    assert (base / "managed/greylist.conf").read_bytes() == managed
    assert rspamd_files.remove(etc) == []


def test_install_takes_our_block_out_of_a_file_the_package_no_longer_ships(server):
    etc, share, _ = server
    rspamd_files.install(etc, share)
    (share / "local.d/ratelimit.conf").unlink()
    [change] = rspamd_files.install(etc, share)
    assert change.path == etc / "local.d/ratelimit.conf" and change.after is None
    assert not change.path.exists()


def ie_config_run(*argv: str) -> int:
    return ie_cli.run(list(argv), group=ie_config.cli, prog="ie-config")


def test_a_block_naming_another_place_is_brought_up_to_date_in_place(server):
    etc, share, base = server
    rspamd_files.install(etc, share)
    moved = shutil.copytree(share, base / "elsewhere")
    changes = rspamd_files.install(etc, moved)
    assert len(changes) == SHIPPED and all("brought up to date" in c.describe() for c in changes)
    assert str(moved / "local.d/options.inc") in (etc / "local.d/options.inc").read_text()
    assert str(share) + "/" not in (etc / "local.d/options.inc").read_text()
    rspamd_files.remove(etc)
    assert (etc / "local.d/options.inc").read_bytes() == b"# mine\nmax_urls = 5;"


def test_the_command_line_reports_each_change_and_check_says_when_install_is_due(server, monkeypatch, capsys):
    etc, share, base = server
    monkeypatch.setenv(paths.ROOT_ENV, str(base))    # /etc/rspamd and /usr/share/imunifyemail/rspamd in it
    assert ie_config_run("rspamd-files", "check") == 1
    assert f"not current: {etc}/override.d/worker-normal.inc" in capsys.readouterr().out
    assert ie_config_run("rspamd-files", "install") == 0
    out = capsys.readouterr().out.splitlines()
    assert f"imunifyemail: {etc}/local.d/options.inc: Imunify Email's settings added (the rest of the file " \
           "unchanged)" in out and len(out) == SHIPPED
    assert ie_config_run("rspamd-files", "check") == 0
    assert ie_config_run("rspamd-files", "install") == 0
    assert capsys.readouterr().out.splitlines()[-1] == "imunifyemail: Rspamd's files already as they should be"
    assert ie_config_run("rspamd-files", "remove") == 0
    assert f"imunifyemail: {etc}/override.d/worker-normal.inc: removed (it held only Imunify Email's " \
           "settings)" in capsys.readouterr().out.splitlines()
    (etc / "local.d/ratelimit.conf").mkdir()
    assert ie_config_run("rspamd-files", "install") == 1
    assert capsys.readouterr().err.strip() == f"Error: {etc}/local.d/ratelimit.conf: not a regular file"


@pytest.mark.parametrize("spoil, reason", [
    (lambda etc: (etc / "local.d/ratelimit.conf").mkdir(), "not a regular file"),
    (lambda etc: (etc / "override.d/worker-proxy.inc").symlink_to(etc / "nowhere"), "does not exist"),
    (lambda etc: (etc / "override.d/worker-fuzzy.inc").write_text("# BEGIN imunifyemail rspamd\nx = 1;\n"),
     "no END line"),
])
def test_a_file_that_cannot_be_handled_is_named_and_nothing_changes(server, spoil, reason):
    etc, share, _ = server
    spoil(etc)
    before = snapshot(etc)
    with pytest.raises(rspamd_files.RspamdFilesError, match=reason):
        rspamd_files.install(etc, share)
    assert snapshot(etc) == before


@pytest.fixture
def world_readable_dir():
    """A directory another user can reach (pytest's tmp_path is under a 0700 one)."""
    path = Path(tempfile.mkdtemp(prefix="ie-rspamd-files-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


AS_USER = """
import sys
import tempfile
from pathlib import Path
from imunifyemail import rspamd_files
try:
    rspamd_files.install(Path(sys.argv[1]), Path(sys.argv[2]))
except rspamd_files.RspamdFilesError as exc:
    print(exc)
    sys.exit(3)
"""


@pytest.mark.parametrize("mode, reason", [(0o600, "cannot be read"), (0o644, "cannot be rewritten")])
def test_a_file_we_may_not_read_or_write_is_refused_before_anything_changes(world_readable_dir, mode, reason):
    """Run by a user who owns /etc/rspamd's directories but not the administrator's options.inc (as a
    read-only file system or an immutable file would refuse root)."""
    user = ensure_hosted_user("demo1")
    tmp_path = world_readable_dir
    etc = tmp_path / "etc/rspamd"
    (etc / "local.d").mkdir(parents=True)
    (etc / "override.d").mkdir()
    options = etc / "local.d/options.inc"
    options.write_text("max_urls = 5;\n")
    options.chmod(mode)
    for d in (etc, etc / "local.d", etc / "override.d"):
        os.chown(d, user.pw_uid, user.pw_gid)
    share = package_share(tmp_path)
    before = snapshot(etc)
    proc = subprocess.run(["setpriv", "--reuid=demo1", "--regid=demo1", "--clear-groups", sys.executable,
                           "-c", AS_USER, str(etc), str(share)], capture_output=True, text=True, cwd="/",
                          env={**os.environ, "PYTHONPATH": str(REPO / "plugin")})
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert proc.stdout.strip() == f"{options}: {reason}" + (" (Permission denied)" if mode == 0o600 else
                                                            " (read-only file system or immutable file?)")
    assert snapshot(etc) == before
