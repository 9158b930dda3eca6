"""``ie-cli incoming``: the incoming filter's daily spam/ham counts and each account's switch.

The filter itself is turned on and off with ``ie-config enable-incoming`` / ``disable-incoming``;
rules are in :mod:`imunifyemail.ops.incoming`.
"""
from typing import Optional

import click

from ..ops import caller as callers
from ..ops import incoming as incoming_ops
from . import durations, output
from .cobra import Group
from .durations import Duration

ADMIN = callers.admin(callers.CLI)
_SWITCH = click.Choice(["on", "off"], case_sensitive=False)


@click.group(cls=Group, short_help="the incoming filter: daily spam/ham counts, each account's switch",
             help="The incoming filter (ie-config enable-incoming): inbound spam is delivered to the recipient's "
                  "Junk folder. Shows its daily spam/ham counts per account and turns it off (or on again) "
                  "for an account.")
def incoming() -> None:
    pass


@incoming.command("stats", short_help="daily spam/ham counts per account",
                  help="Daily counts of the inbound mail the incoming filter scored, per account (UTC days, "
                       "newest first): spam (delivered to Junk, or to the inbox of a whitelisted recipient) "
                       "and ham.")
@click.option("--since", type=Duration(), default=durations.text(incoming_ops.DEFAULT_SINCE),
              help="From how long ago: seconds, or a duration such as 100s, 5m, 1h, 5d")
@click.option("-a", "--account", help="Only this account")
@click.option("--json", "as_json", is_flag=True, help="Output in JSON format")
@click.pass_obj
def stats(env, since: int, account: Optional[str], as_json: bool) -> None:
    found = incoming_ops.stats(env, ADMIN, since, account)
    if as_json:
        click.echo(output.to_json(found, indent=2))
        return
    rows = [("Day", "Account", "Spam", "Ham")]
    rows += [(i["day"], output.oneline(i["account"]), str(i["spam"]), str(i["ham"])) for i in found["items"]]
    rows.append(("Total", "", str(found["totals"]["spam"]), str(found["totals"]["ham"])))
    widths = [max(len(r[i]) for r in rows) + 3 for i in range(4)]
    click.echo("\n".join("".join(f"{c:<{w}}" for c, w in zip(r, widths)).rstrip() for r in rows))


@incoming.command("list", short_help="each account's switch of the incoming filter",
                  help="Every account with its switch of the incoming filter (on unless turned off).")
@click.option("--json", "as_json", is_flag=True, help="Output in JSON format")
@click.pass_obj
def list_(env, as_json: bool) -> None:
    items = incoming_ops.accounts(env)
    if as_json:
        click.echo(output.to_json({"items": items, "max_count": len(items)}, indent=2))
        return
    width = max([len("Account"), *(len(i["account"]) for i in items)]) + 3
    lines = [f"{'Account':<{width}}Incoming"]
    lines += [f"{output.oneline(i['account']):<{width}}{'on' if i['incoming'] else 'off'}" for i in items]
    click.echo("\n".join(lines))


@incoming.command("edit", short_help="turn the incoming filter on or off for an account",
                  help="Turn the incoming filter on or off for one account (on by default): an account with it "
                       "off gets all its inbound mail in the inbox, unscored and uncounted.")
@click.option("-a", "--account", required=True, help="Account name")
@click.option("--state", required=True, type=_SWITCH, help="on or off")
@click.option("--json", "as_json", is_flag=True, help="Output in JSON format")
@click.pass_obj
def edit(env, account: str, state: str, as_json: bool) -> None:
    done = incoming_ops.set_account(env, ADMIN, account, state.lower() == "on")
    click.echo(output.to_json(done, indent=2) if as_json
               else f"incoming filter {'on' if done['incoming'] else 'off'} for account {account}\nOK")
