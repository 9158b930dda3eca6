"""``ie-cli am``: the Activity Monitor, as the seed document describes it.

``stats`` prints the nested view of sender objects, ``limit set`` a sender
object's own hourly (and, beyond the seed, daily) limit, ``server-settings`` the
default limits; beyond
the seed, ``whitelist add|remove`` whitelists a domain or sender email object
(the same list as ``ie-cli whitelist sender``). Rules live in
:mod:`imunifyemail.ops.activity`; errors are translated by ``ie_cli.run``.
The context object is :class:`imunifyemail.context.Context`.
"""
from typing import Optional

import click

from .. import shapes
from ..core import limits
from ..ops import activity as am_ops
from ..ops import caller as callers
from . import output
from .cobra import Group, render_help
from . import durations
from .durations import Duration

ADMIN = callers.admin(callers.CLI)

pass_env = click.pass_obj


class RunnableGroup(Group):
    """A group that also runs on its own: cobra shows both usage lines."""

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        text = render_help(self, ctx)
        formatter.write(text.replace(f"Usage:\n  {ctx.command_path} [command]",
                                     f"Usage:\n  {ctx.command_path} [flags]\n  {ctx.command_path} [command]", 1))


@click.group(cls=Group, short_help="interaction with the Activity Monitor, same API as in ActivityMonitor UI",
             help="This subcommand interacts with the Activity Monitor to return statistics, get/set settings for\n"
                  "the sender objects.\n"
                  "Activity Monitor operates by the sender objects. Sender object is an object on behalf of which\n"
                  'client sends email. It could be one of: "account", "domain", "script" or "sender_email"')
def am() -> None:
    pass


# -- stats ------------------------------------------------------------------

@am.command(short_help="stats (statistics) returns the aggregated view of senders objects with various filters",
            help="stats (statistics) returns the aggregated view of senders objects with various filters")
@click.option("--account-name", help="Account name to filter")
@click.option("--domain", help="Domain to filter")
@click.option("-l", "--limit", type=int, default=am_ops.DEFAULT_PAGE,
              help="How many results to return (pagination). The limit applied only for number of accounts "
                   "in response")
@click.option("--offset", type=int, default=0, help="From which offset results to return (pagination)")
@click.option("--script-name", help="Script name to filter")
@click.option("--sender-email", help="Sender email to filter")
@click.option("--since", type=Duration(), default=durations.text(am_ops.DEFAULT_SINCE),
              help="The time which passed from the flag value until now: seconds, or 100s, 5m, 1h, 5d")
@pass_env
def stats(env, account_name: Optional[str], domain: Optional[str], limit: int, offset: int,
          script_name: Optional[str], sender_email: Optional[str], since: int) -> None:
    query = am_ops.stats_query(env, account_name=account_name, domain=domain, sender_email=sender_email,
                               script_name=script_name, since=since, limit=limit, offset=offset)
    click.echo(output.am_json(shapes.am_stats(am_ops.stats(env, ADMIN, query))))


# -- limit ------------------------------------------------------------------

@am.group(cls=Group, short_help="The limit value of sender object can be applied on particular domain, sender email "
                                "and account",
          help="The limit value of sender object can be applied on particular domain, sender email and account")
def limit() -> None:
    pass


@limit.command("set", short_help="set limit for the sender object(s)", help="set limit for the sender object(s)")
@click.option("--daily-limit", type=int, default=None,
              help="The sender object's own limit over the last 24 hours, 0 means unlimited, -1 removes it "
                   "(the server default applies again); unchanged when not given")
@click.option("--id", "object_id", help="The id of sender object")
@click.option("--limit", "value", type=int, default=limits.NO_OVERRIDE,
              help="The limit value, 0 means unlimited, -1 removes the sender object's own limit "
                   "(the server default applies again)")
@click.option("--observe", type=int, default=None,
              help="1: observe mode (its limits count and report who would be held, holding nothing), "
                   "0: enforce its limits, -1: follow the server's setting; unchanged without the flag")
@click.option("--so-type", help=f"supported values: [{' '.join(limits.TYPES)}]")
@click.pass_context
def limit_set(ctx: click.Context, daily_limit: Optional[int], object_id: Optional[str], value: int,
              observe: Optional[int], so_type: Optional[str]) -> None:
    env = ctx.obj
    if not object_id:
        raise click.UsageError("required flag --id is missing: the id of a sender object (see ie-cli am stats)")
    if not so_type:
        raise click.UsageError(f"required flag --so-type is missing: one of [{' '.join(limits.TYPES)}]")
    # The seed's: without --limit, the own limit goes; but --observe or --daily-limit alone changes only that.
    given = ctx.get_parameter_source("value") != click.core.ParameterSource.DEFAULT
    hourly = value if given or (daily_limit is None and observe is None) else None
    am_ops.validate_object_settings(hourly, observe, daily_limit)   # all, before any changes
    if observe is not None:
        am_ops.set_observe(env, ADMIN, object_id, so_type, observe)
    if hourly is not None or daily_limit is not None:
        am_ops.set_limit(env, ADMIN, object_id, so_type, hourly, daily_limit)
    click.echo("OK")


@limit.command("apply-suggested", short_help="make the sender object's suggested limit its own",
               help="Make the sender object's suggested limits its own: twice the 95th percentile of what it\n"
                    "sent per hour (and per day) over the last 30 days (the hours, days it sent mail in), in the\n"
                    "limit mode's unit: the hourly limit, and the daily limit when there is a daily suggestion.\n"
                    "Prints the limit set and the suggestions (am stats shows them as suggested_limit and\n"
                    "suggested_daily_limit).")
@click.option("--id", "object_id", help="The id of sender object")
@pass_env
def limit_apply_suggested(env, object_id: Optional[str]) -> None:
    applied = am_ops.apply_suggested(env, ADMIN, _required_id(object_id))
    click.echo(output.am_json(shapes.applied_suggestion(applied)))


# -- observe mode -------------------------------------------------------------

@am.command(short_help="messages observe mode passed that a sender limit would have held",
            help="List the messages observe mode passed that a sender limit would have held (newest first), one\n"
                 "item per limit they found full: which sender object, which limit, the sender, how many\n"
                 "recipients, when. Observe mode: am server-settings set --observe 1, am limit set --observe 1.")
@click.option("-l", "--limit", type=int, default=am_ops.DEFAULT_PAGE, help="How many results to return (pagination)")
@click.option("--offset", type=int, default=0, help="From which offset results to return (pagination)")
@click.option("--since", type=Duration(), default=durations.text(am_ops.DEFAULT_SINCE),
              help="The time which passed from the flag value until now: seconds, or 100s, 5m, 1h, 5d")
@pass_env
def observed(env, limit: int, offset: int, since: int) -> None:
    items, total = am_ops.would_be_holds(env, ADMIN, since, limit, offset)
    click.echo(output.am_json(shapes.observed_list(items, total)))


# -- server settings --------------------------------------------------------

_SERVER_HELP = ("Operates by the server sender limit settings and allows to set default limit that is applied "
                "for all sender objects")


@am.group("server-settings", cls=RunnableGroup, invoke_without_command=True, short_help=_SERVER_HELP,
          help=_SERVER_HELP + ".\nWithout a subcommand - prints the current server settings (defaults: every "
                              "limit 0 = unlimited, limit_mode 1).")
@click.pass_context
def server_settings(ctx: click.Context) -> None:
    if ctx.invoked_subcommand is None:
        click.echo(output.am_json(shapes.server_settings(am_ops.server_settings(ctx.obj))))


def _type_limit_option(so_type: str, daily: bool = False):
    flag = "--" + ("daily-" if daily else "") + so_type.replace("_", "-")
    window = "limit over the last 24 hours" if daily else "hourly limit"
    return click.option(flag, ("daily_" if daily else "") + so_type, type=int, default=-1,
                        help=f"The default {window} of every {so_type.replace('_', ' ')} sender object, "
                             "0 means unlimited, -1 leaves it unchanged")


@server_settings.command("set", short_help="set the server sender limit settings",
                         help="Set the server sender limit settings: the limit mode and the default limits per "
                              "sender object type\n(messages, or recipients, within the last 60 minutes and "
                              "within the last 24 hours), and the most\nrecipients one message may have. "
                              "0 means unlimited, -1 leaves a value unchanged.")
@click.option("--limit-mode", type=int, default=-1,
              help="1 limits by the number of messages (sender), 2 by the number of recipients; "
                   "-1 leaves it unchanged")
@click.option("--observe", type=int, default=-1,
              help="1: observe mode (limits count and report who would be held, holding nothing), 0: enforce "
                   "them; -1 leaves it unchanged")
@_type_limit_option(limits.ACCOUNT)
@_type_limit_option(limits.DOMAIN)
@_type_limit_option(limits.SCRIPT)
@_type_limit_option(limits.SENDER_EMAIL)
@_type_limit_option(limits.ACCOUNT, daily=True)
@_type_limit_option(limits.DOMAIN, daily=True)
@_type_limit_option(limits.SCRIPT, daily=True)
@_type_limit_option(limits.SENDER_EMAIL, daily=True)
@click.option("--max-recipients", type=int, default=-1,
              help="The most recipients one message may have (more: held as ratelimit, whitelisted senders "
                   "excepted), 0 means no cap, -1 leaves it unchanged")
@pass_env
def server_settings_set(env, **values: int) -> None:
    new = am_ops.set_server_settings(env, ADMIN, values)
    click.echo("New server settings is:")
    click.echo(output.am_json(shapes.server_settings(new)))


# -- whitelist (beyond the seed: the web UI's "Whitelist sender") -------------

@am.group(cls=Group, short_help="whitelist domain and sender_email objects (the sender whitelist)",
          help="Add a domain or sender_email object to the sender whitelist, or remove it: the same list as\n"
               '"ie-cli whitelist sender". Whitelisted senders bypass scanning and all sender limits.\n'
               "Account and script objects cannot be whitelisted.")
def whitelist() -> None:
    pass


@whitelist.command("add", short_help="whitelist a domain or sender_email object",
                   help="Add a domain or sender_email object to the sender whitelist.")
@click.option("--id", "object_id", help="The id of sender object")
@pass_env
def whitelist_add(env, object_id: Optional[str]) -> None:
    am_ops.whitelist_object(env, ADMIN, _required_id(object_id))
    click.echo("OK")


@whitelist.command("remove", short_help="remove a domain or sender_email object from the whitelist",
                   help="Remove a domain or sender_email object from the sender whitelist.")
@click.option("--id", "object_id", help="The id of sender object")
@pass_env
def whitelist_remove(env, object_id: Optional[str]) -> None:
    am_ops.unwhitelist_object(env, ADMIN, _required_id(object_id))
    click.echo("OK")


def _required_id(object_id: Optional[str]) -> str:
    if not object_id:
        raise click.UsageError("required flag --id is missing: the id of a sender object (see ie-cli am stats)")
    return object_id
