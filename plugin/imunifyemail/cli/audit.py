"""``ie-cli audit list``: the audit trail, newest first (who changed what, from where, when, the outcome)."""
from typing import Optional

import click

from .. import shapes
from ..ops import audit as audit_ops
from ..ops.paging import MAX_PAGE
from ..ops import caller as callers
from . import output
from .cobra import Group
from .durations import Duration

ADMIN = callers.admin(callers.CLI)


@click.group(cls=Group, short_help="the audit trail: every change, who made it and from where",
             help="The audit trail: every release, delete, purge, whitelist, limit, setting, account and "
                  "enable/disable change, with who made it (root, a WHM user, a hosted user or the daemon), "
                  "from where (cli, whm, cpanel, hook, daemon), the email ids and the outcome.")
def audit() -> None:
    pass


@audit.command("list", short_help="list audit entries, newest first", help="List audit entries, newest first.")
@click.option("--since", type=Duration(), help="Only the entries of the last N seconds (or 100s, 5m, 1h, 5d)")
@click.option("-a", "--account", help="Only the entries about this account")
@click.option("-l", "--limit", type=click.IntRange(min=1, max=MAX_PAGE), default=100,
              help="Maximum number of entries returned")
@click.option("--offset", type=click.IntRange(min=0), default=0, help="Skip this many entries")
@click.option("--json", "as_json", is_flag=True, help="Output in JSON format")
@click.pass_obj
def audit_list(env, since: Optional[int], account: Optional[str], limit: int, offset: int, as_json: bool) -> None:
    items, total = audit_ops.entries(env, ADMIN, since, account, limit, offset)
    if as_json:
        click.echo(output.to_json(shapes.audit_list(items, total), indent=2))
    else:
        click.echo(output.audit_text(items, total))
