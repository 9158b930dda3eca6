"""``ie-cli``: the quarantine, accounts, whitelist, Activity Monitor and filter settings from a root shell.

Commands, flags, texts and JSON follow the seed document. The commands are
thin: every rule is in the operations of :mod:`imunifyemail.ops`, the text
layouts in :mod:`.output`, the JSON shapes in :mod:`imunifyemail.shapes`. Every expected failure (bad flag or value, unknown id or
account, bad config, failed release) is translated in one place,
:func:`run`, into one ``Error: ...`` line on stderr and exit status 1.
"""
import os
import sqlite3
import sys
from typing import Callable, Iterable, List, Optional, Sequence

import click

from .. import __version__, config, logs, paths, shapes
from ..context import Context
from ..core import trust
from ..core.accounts import FOLLOW_DEFAULT, MAX_LIMIT_BYTES, ROOT, STATES
from ..core.verdict import REASONS, WHITELISTS
from ..errors import ActionError, InvalidInput
from ..ops import accounts as account_ops
from ..ops import caller as callers
from ..ops import emails as email_ops
from ..ops import filter_settings as filter_ops
from ..ops import trust as trust_ops
from ..ops import whitelist as whitelist_ops
from ..ops.release import OneShotReleaser
from ..shapes import human_size
from ..store import db
from . import output
from .am import am
from .audit import audit
from .features import settings
from .incoming import incoming
from .cobra import CONTEXT_SETTINGS, Group
from .durations import Since, SinceTime

PROG = "ie-cli"
MB = 1024 * 1024
ADMIN = callers.admin(callers.CLI)   # ie-cli runs as root: the administrator


pass_env = click.make_pass_decorator(Context)


def emit(text: str) -> None:
    click.echo(text)


def respond(as_json: bool, json_view: Callable, text_view: Callable, *args) -> None:
    """The command's result as JSON (``--json``) or as the seed's text layout."""
    if as_json:
        emit_json(json_view(*args))
    else:
        emit(text_view(*args))


def emit_json(obj, indent: int = 2) -> None:
    click.echo(output.to_json(obj, indent=indent))


def account_option(fn):
    return click.option("-a", "--account", default=ROOT, help="Account name; root means all accounts")(fn)


def json_option(fn):
    return click.option("--json", "as_json", is_flag=True, help="Output in JSON format")(fn)


class Count(click.IntRange):
    """A bounded integer that SQLite can store; says "'x' is not a valid integer"."""
    name = "integer"

    def __init__(self, min: int = 0, max: int = 2**63 - 1):
        super().__init__(min=min, max=max)


def trust_time_options(what: str):
    """``--for DURATION`` / ``--until TIME``: when trust given for a while ends."""
    def wrap(fn):
        fn = click.option("--until", metavar="TIME",
                          help=f"When {what}: an ISO 8601 time, e.g. 2026-12-10T18:00Z (no offset: "
                               "the server's local time)")(fn)
        return click.option("--for", "for_", metavar="DURATION",
                            help=f"How long until {what}: e.g. 30m, 12h, 7d, 2w")(fn)
    return wrap


def split_ids(values: Iterable[str]) -> List[str]:
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


@click.group(cls=Group, context_settings=CONTEXT_SETTINGS, help="Imunify Email quarantine CLI application")
@click.pass_context
def cli(ctx: click.Context) -> None:
    ctx.obj = Context(releaser=OneShotReleaser.from_config)   # root: sendmail as the Exim user itself
    ctx.call_on_close(ctx.obj.close)


# -- emails -----------------------------------------------------------------

@cli.group(short_help="interaction with emails in the quarantine",
           help="Interaction with emails in the quarantine: list, show, release and remove them.\n"
                "The root account sees the emails of all accounts.")
def emails() -> None:
    pass


@emails.command("list", short_help="list emails in the quarantine",
                help="List emails in the quarantine, newest first.\n"
                     "With automatic release on, an email held only for a sender limit shows when it is "
                     "expected to leave (Expected_Release; expected_release in JSON, unix time or null).")
@account_option
@json_option
@click.option("-l", "--limit", type=Count(min=1), default=25,
              help="How many results to return (pagination)")
@click.option("--offset", type=Count(min=0), default=0,
              help="From which offset results to return (pagination)")
@click.option("--sender", help="Envelope sender to filter (part of the address)")
@click.option("--recipient", help="Recipient to filter (part of the address)")
@click.option("--subject", help="Subject to filter (part of the subject)")
@click.option("--reason", type=click.Choice(REASONS), help=f"Reason to filter, one of: [{' '.join(REASONS)}]")
@click.option("--since", type=SinceTime(), default="30d", show_default=True,
              help="Only emails received within this long before now (100s, 5m, 1h, 5d), or at or after this "
                   "unix time (a bare number; 0: all)")
@click.option("--until", type=Count(), help="Only emails received before this time (unix seconds)")
@click.option("--unattributed", is_flag=True,
              help="With -a root: only the mail held under root itself (no account could be blamed)")
@pass_env
def emails_list(env: Context, account: str, as_json: bool, limit: int, offset: int, sender: Optional[str],
                recipient: Optional[str], subject: Optional[str], reason: Optional[str],
                since: Optional[Since], until: Optional[int], unattributed: bool) -> None:
    items, total = email_ops.list_emails(env, ADMIN, email_ops.EmailQuery(
        account=account, unattributed=unattributed, sender=sender, recipient=recipient, subject=subject,
        reason=reason, since=since and since.start(env.now()), until=until, limit=limit, offset=offset))
    expected = email_ops.expected_releases(env, items)
    respond(as_json, shapes.emails_list, output.emails_list_text, items, total, expected)


@emails.command("show", short_help="show an email held in the quarantine",
                help="Show an email held in the quarantine: its details, headers and body (base64).")
@click.option("--id", "email_id", required=True, help="The email id (see emails list)")
@account_option
@json_option
@pass_env
def emails_show(env: Context, email_id: str, account: str, as_json: bool) -> None:
    held = email_ops.show(env, ADMIN, email_id, account)
    respond(as_json, shapes.email_show, output.email_show_text, held)


@emails.command("release", short_help="release emails and send them to their recipients",
                help="Release emails from the quarantine and send them to their original recipients.\n"
                     "Each email leaves the quarantine only once the mail server accepted it.\n"
                     "With --whitelist-sender or --raise-limit, and --for or --until, the release also trusts "
                     "the sender for a while: its sender email whitelisted, or the sender limit it reached "
                     "raised; either ends by itself.")
@click.option("--ids", multiple=True, required=True, metavar="strings",
              help="Comma-separated email ids to release")
@click.option("--not-spam", is_flag=True,
              help="Also teach the filter: Rspamd learns them as not spam (those held as spam), so similar "
                   "mail passes from now on; the release happens even if Rspamd cannot learn")
@account_option
@click.option("--whitelist-sender", is_flag=True,
              help="Also whitelist each email's sender (its sender email) until --for/--until ends")
@click.option("--raise-limit", type=Count(min=1), metavar="N",
              help="Also raise the sender limit each email reached to N an hour until --for/--until ends")
@trust_time_options("the whitelisting or the raised limit ends")
@pass_env
def emails_release(env: Context, ids: Sequence[str], account: str, not_spam: bool, whitelist_sender: bool,
                   raise_limit: Optional[int], for_: Optional[str], until: Optional[str]) -> None:
    grant = trust_ops.grant_of(whitelist_sender, raise_limit, for_, until, env.clock())
    if not_spam and grant is not None:   # one step does one thing: teach the filter, or trust the sender
        raise InvalidInput("use --not-spam on its own, without --whitelist-sender or --raise-limit")
    if not_spam:
        _, report = email_ops.release_not_spam(env, ADMIN, split_ids(ids), account)
        emit_lessons(report)
    elif grant is None:
        email_ops.release(env, ADMIN, split_ids(ids), account)
    else:
        emit(output.granted_text(trust_ops.release(env, ADMIN, split_ids(ids), grant, account), grant))
    emit("OK")


def emit_lessons(report) -> None:
    """What the filter learned, on stdout; what it could not, on stderr (the action itself was done)."""
    if report.learned:
        emit(report.learned_line())
    for email_id, why in report.not_learned().items():
        click.echo(f"warning: {email_id} not learned: {why}", err=True)


@emails.command("remove", short_help="remove emails from the quarantine",
                help="Remove emails from the quarantine permanently.")
@click.option("--ids", multiple=True, required=True, metavar="strings",
              help="Comma-separated email ids to remove")
@click.option("--as-spam", is_flag=True,
              help="Also teach the filter: Rspamd learns them as spam (not those held only for a sender "
                   "limit), so similar mail from any account is held from now on; they are deleted even if "
                   "Rspamd cannot learn")
@account_option
@pass_env
def emails_remove(env: Context, ids: Sequence[str], account: str, as_spam: bool) -> None:
    if as_spam:
        _, report = email_ops.remove_as_spam(env, ADMIN, split_ids(ids), account)
        emit_lessons(report)
    else:
        email_ops.remove(env, ADMIN, split_ids(ids), account)
    emit("OK")


# -- accounts ---------------------------------------------------------------

@cli.group(short_help="interaction with accounts in the quarantine",
           help="Interaction with accounts in the quarantine: space limits, states and purging.")
def accounts() -> None:
    pass


@accounts.command("list", short_help="list all accounts in the quarantine",
                  help="List all accounts in the quarantine with their space limit, used space and state.")
@json_option
@pass_env
def accounts_list(env: Context, as_json: bool) -> None:
    found = account_ops.list_accounts(env, ADMIN)
    respond(as_json, shapes.accounts_list, output.accounts_list_text, found)


@accounts.command("edit", short_help="edit the quarantine space limit and state of an account",
                  help="Edit the quarantine space limit and the state of an account.\n"
                       "A blocked account has all its outgoing mail held in the quarantine.")
@click.option("-a", "--account", required=True, help="Account name")
@click.option("--state", type=click.Choice(STATES), help="New state: active or block")
@click.option("--limit", type=Count(min=-1), help="New quarantine space limit in bytes. Use -1 to set common default value")
@click.option("-s", "--storage-capacity", type=Count(min=-1, max=MAX_LIMIT_BYTES // MB),
              help="New quarantine space limit in MB (instead of --limit). Use -1 to set common default value")
@click.option("-r", "--releases-limit", type=Count(min=-1),
              help="How many recipients the account's own user may release held mail to per hour (0: none); "
                   "an email counts once for each of its recipients, and one with more recipients than this "
                   "can be released by the administrator only (whose releases are not limited). "
                   "Use -1 to set common default value")
@json_option
@pass_env
def accounts_edit(env: Context, account: str, state: Optional[str], limit: Optional[int],
                  storage_capacity: Optional[int], releases_limit: Optional[int], as_json: bool) -> None:
    if limit is not None and storage_capacity is not None:
        raise click.UsageError("--limit and --storage-capacity cannot be used together")
    if storage_capacity is not None:
        limit = storage_capacity if storage_capacity == FOLLOW_DEFAULT else storage_capacity * MB
    if state is None and limit is None and releases_limit is None:
        raise click.UsageError("nothing to change: use --state or --limit (or --storage-capacity, --releases-limit)")
    info = account_ops.edit(env, ADMIN, account, state=state, limit_bytes=limit, releases_limit=releases_limit)
    if as_json:
        emit_json(shapes.account(info))
    else:
        emit(output.accounts_table([info]))


@accounts.command("remove", short_help="clean all quarantine of an account",
                  help="Clean all quarantine of an account (of every account with -a root).")
@click.option("-a", "--account", required=True, help="Account name; root means all accounts")
@pass_env
def accounts_remove(env: Context, account: str) -> None:
    freed = account_ops.purge(env, ADMIN, account)
    emit("OK")
    click.echo(f"Removed {freed.count} email(s), {human_size(freed.bytes)} freed", err=True)


# -- quarantine defaults ------------------------------------------------------

@cli.group("quarantine-defaults", short_help="the default quarantine space and releases limit of accounts",
           help="The default quarantine space limit and releases limit of accounts: an account follows them until "
                "it is given its own value (accounts edit), and again after accounts edit ... -1.")
def quarantine_defaults() -> None:
    pass


@quarantine_defaults.command("list", short_help="show the quarantine defaults",
                             help="Show the quarantine defaults: the space limit (bytes) and the releases limit "
                                  "(recipients per hour) of every account without its own.")
@json_option
@pass_env
def quarantine_defaults_list(env: Context, as_json: bool) -> None:
    respond(as_json, shapes.quarantine_defaults, output.quarantine_defaults_text,
            account_ops.defaults(env, ADMIN))


@quarantine_defaults.command("set", short_help="set the quarantine defaults",
                             help="Set the quarantine defaults; every account without its own value changes "
                                  "with them.")
@click.option("-r", "--releases-limit", type=Count(min=0),
              help="Default releases limit: recipients an account's own user may release held mail to per hour")
@click.option("-s", "--storage-capacity", type=Count(min=0, max=MAX_LIMIT_BYTES // MB),
              help="Default quarantine space limit of an account, in MB")
@json_option
@pass_env
def quarantine_defaults_set(env: Context, releases_limit: Optional[int], storage_capacity: Optional[int],
                            as_json: bool) -> None:
    if releases_limit is None and storage_capacity is None:
        raise click.UsageError("nothing to change: use --releases-limit or --storage-capacity")
    new = account_ops.set_defaults(env, ADMIN, limit_bytes=None if storage_capacity is None else storage_capacity * MB,
                                   releases_limit=releases_limit)
    respond(as_json, shapes.quarantine_defaults, output.quarantine_defaults_text, new)


# -- whitelist --------------------------------------------------------------

@cli.group(short_help="interaction with the whitelist of authenticated users, senders and recipients",
           help="List/Add/Delete authenticated users, senders and recipients to/from whitelist.\n"
                "Where :\n"
                "    - authenticated user could be only an email address\n"
                "    - sender and recipient could be one of domain or email address")
def whitelist() -> None:
    pass


_WHO = {
    "authuser": ("operation with the whitelist of the authenticated users (email addresses)",
                 "authenticated user(s)", "email addresses"),
    "sender": ("operation with the whitelist of senders (email addresses and domains)",
               "sender(s)", "email addresses and domains"),
    # Beyond the seed's list, as the product's newer documentation has it.
    "recipient": ("operation with the whitelist of recipients (email addresses and domains)",
                  "recipient(s)", "email addresses and domains"),
}


def _whitelist_group(list_name: str) -> click.Group:
    short, plural, accepted = _WHO[list_name]
    group = Group(list_name, short_help=short, help=short)

    @group.command("add", short_help=f"add {plural} to the whitelist", args_usage="[value1 value2 ... valueN]",
                   help=f"Add {plural} to the whitelist ({accepted}); for good, or for a while "
                        "(--for or --until: the entries then end by themselves).")
    @click.argument("values", nargs=-1)
    @trust_time_options("the entries end")
    @pass_env
    def add(env: Context, values: Sequence[str], for_: Optional[str], until: Optional[str]) -> None:
        ends = whitelist_ops.expiry(for_, until, env.clock())
        entries = whitelist_ops.add(env, ADMIN, list_name, values, ends)
        title = f"Adding {plural} to the whitelist" + (f" until {trust.iso(ends)}" if ends is not None else "")
        emit(output.whitelist_change_text(title + ":", entries))

    def remove(verb: str, also: str) -> None:   # "remove" and "delete": one command, two names
        @group.command(verb, short_help=f"{verb} {plural} from the whitelist (the same as {also})",
                       args_usage="[value1 value2 ... valueN]",
                       help=f"{verb.capitalize()} {plural} from the whitelist (the same as {also}).")
        @click.argument("values", nargs=-1)
        @pass_env
        def command(env: Context, values: Sequence[str]) -> None:
            entries = whitelist_ops.remove(env, ADMIN, list_name, values)
            emit(output.whitelist_change_text(f"Removing {plural} from the whitelist:", entries))

    remove("remove", "delete")
    remove("delete", "remove")

    @group.command("list", short_help=f"list the whitelisted {plural}", help=f"List the whitelisted {plural}.")
    @json_option
    @pass_env
    def list_(env: Context, as_json: bool) -> None:
        entries = whitelist_ops.entries(env, ADMIN, list_name)
        respond(as_json, shapes.whitelist_list, output.whitelist_list_text, entries)

    return group


for _name in WHITELISTS:
    whitelist.add_command(_whitelist_group(_name))


# -- activity monitor (cli/am.py) -------------------------------------------

cli.add_command(am)
cli.add_command(audit)
cli.add_command(settings)
cli.add_command(incoming)


# -- filter settings and version --------------------------------------------

@cli.command("filter-settings",
             short_help="toggle the filter settings, without any parameters - returns the current settings",
             help="Toggle the filter settings; without any parameters - returns the current settings.")
@click.option("--allow-winexec", is_flag=True, help="Let emails with Windows executable attachments through")
@click.option("--disallow-winexec", is_flag=True,
              help="Hold emails with Windows executable attachments in the quarantine")
@click.option("--spam-filter", is_flag=True, help="Hold emails classified as spam in the quarantine")
@click.option("--no-spam-filter", is_flag=True, help="Let emails classified as spam through")
@pass_env
def filter_settings(env: Context, allow_winexec: bool, disallow_winexec: bool, spam_filter: bool,
                    no_spam_filter: bool) -> None:
    changes = {}
    for name, on, off, flags in (
            ("allow_winexec", allow_winexec, disallow_winexec, "--allow-winexec and --disallow-winexec"),
            ("spam_filter", spam_filter, no_spam_filter, "--spam-filter and --no-spam-filter")):
        if on and off:
            raise click.UsageError(f"{flags} cannot be used together")
        if on or off:
            changes[name] = on
    current = filter_ops.change(env, ADMIN, changes)
    emit(output.filter_settings_text(shapes.filter_settings(current)))


@cli.command(short_help="print the ImunifyEmail CLI version", help="Print the ImunifyEmail CLI version.")
def version() -> None:
    emit(f"{PROG} version {__version__}")


# -- the one place errors become "Error: ..." -------------------------------

def _error(message: str) -> int:
    click.echo(f"Error: {' '.join(output.oneline(message).split())}", err=True)
    return 1


def run(argv: Optional[Sequence[str]] = None, group: Optional[click.Group] = None, prog: str = PROG) -> int:
    """Run one command (of ``group``, ``ie-cli`` by default); returns the exit status."""
    try:
        result = (group or cli).main(args=argv, prog_name=prog, standalone_mode=False)
    except click.exceptions.Abort:
        return _error("aborted")
    except click.ClickException as exc:
        return _error(exc.format_message())
    except (ActionError, config.ConfigError, db.DatabaseError) as exc:
        return _error(str(exc))
    except sqlite3.Error as exc:
        return _error(f"database {paths.system_path(paths.DATABASE)}: {exc}")
    except OSError as exc:
        where = f": {exc.filename}" if exc.filename else ""
        return _error(f"{exc.strerror or exc}{where}")
    return result if isinstance(result, int) else 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The console script: root only, actions logged to syslog, errors as one line."""
    if os.geteuid() != 0:
        return _error(f"{PROG} must be run as root")
    logs.to_syslog(PROG)
    return run(argv)


if __name__ == "__main__":
    sys.exit(main())
