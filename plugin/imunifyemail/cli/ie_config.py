"""``ie-config``: turn Imunify Email on and off on a cPanel server, and see how it is doing.

``enable`` starts our services, puts our routers into
``/etc/exim.conf.local`` (rebuilding and restarting Exim) and installs the
``postbuildeximconf`` re-apply hook; ``disable`` undoes the three in the
opposite order: mail then flows unscanned, nothing queued is lost, the
quarantine is kept. Both are idempotent. ``notify`` (hidden: a systemd timer
runs it every minute) sends the digests and the webhook
(:mod:`imunifyemail.notify`); ``rspamd-files`` (hidden: the RPM's scriptlets)
puts our Rspamd settings beside the administrator's (:mod:`imunifyemail.rspamd_files`). The rules live in
:mod:`imunifyemail.exim` (``status``: :mod:`imunifyemail.ops.status`); errors become one ``Error: ...`` line through
:func:`.ie_cli.run`.
"""
import os
import sys
from typing import List, Optional, Sequence

import click

from .. import __version__, config, logs, rspamd_files, rspamd_learning, shapes
from ..context import Context
from ..errors import ActionError
from ..exim import patcher, rebuild_hook, services, snippets
from ..notify import job as notify_job
from ..ops import audit
from ..ops import caller as callers
from ..ops import status as status_ops
from . import ie_cli, output
from .cobra import CONTEXT_SETTINGS, Group

PROG = "ie-config"


def _audit(action: str, changed: bool) -> None:
    """enable/disable in the audit trail, when there is a store (the daemon creates it at its first start)."""
    ctx = Context(create=False)
    if changed and ctx.database.exists():
        audit.record(ctx, callers.admin(callers.CLI), action)
        ctx.close()


@click.group(cls=Group, context_settings=CONTEXT_SETTINGS,
             help="Imunify Email configuration: enable or disable the outbound mail filter in Exim and show "
                  "its status")
def cli() -> None:
    pass


@cli.command(short_help="print the Imunify Email version", help="Print the Imunify Email version.")
def version() -> None:
    click.echo(f"{PROG} version {__version__}")


@cli.command(short_help="show the status of Imunify Email",
             help="Show the status of Imunify Email: the filter in Exim's configuration, the daemon and the web "
                  "application, Rspamd, messages waiting in Exim's queue for the scanner, quarantine totals, "
                  "the metrics file (--json: its samples as the daemon last wrote them).")
@click.option("--json", "as_json", is_flag=True, help="Output in JSON format")
def status(as_json: bool) -> None:
    report = shapes.status(status_ops.collect(config.load()))
    click.echo(output.to_json(report) if as_json else output.status_text(report))


@cli.command(short_help="enable Imunify Email",
             help="Enable Imunify Email: start its services, add the filter to Exim's configuration "
                  "(/etc/exim.conf.local, rebuilt and restarted) and keep it there across WHM rebuilds.")
def enable() -> None:
    cfg = config.load()
    snippets.render(cfg)   # a value Exim cannot take is reported before anything changes
    patcher.preflight()
    rebuild_hook.check_installable()
    services.start()
    outcome = patcher.apply(cfg, enable=True)
    rebuild_hook.install()
    _audit("enable", outcome.rebuilt)
    click.echo("Imunify Email enabled: outbound mail is scanned" if outcome.rebuilt
               else "Imunify Email is already enabled")


@cli.command(short_help="disable Imunify Email",
             help="Disable Imunify Email: remove the filter from Exim's configuration and stop its services. "
                  "Mail is then sent unscanned; messages in Exim's queue and in the quarantine are kept.")
def disable() -> None:
    cfg = config.load()
    patcher.preflight()
    was_hooked = rebuild_hook.installed()
    rebuild_hook.uninstall()
    try:
        outcome = patcher.apply(cfg, enable=False)
    except Exception:
        if was_hooked:   # still enabled: keep healing WHM rebuilds
            rebuild_hook.install()
        raise
    services.stop()
    _audit("disable", outcome.rebuilt)
    click.echo("Imunify Email disabled: outbound mail is sent unscanned" if outcome.rebuilt
               else "Imunify Email is already disabled")


@cli.command("enable-incoming", short_help="enable the incoming filter",
             help="Enable the incoming filter: inbound mail to a local mailbox is scored by Rspamd and spam is "
                  "delivered to the mailbox's Junk folder (never bounced, never held). Accounts can be left out "
                  "(ie-cli accounts edit --incoming off); the recipient whitelist exempts its addresses. Needs "
                  "Imunify Email enabled (ie-config enable).")
def enable_incoming() -> None:
    cfg = config.load()
    snippets.render(cfg, incoming=True)   # a value Exim cannot take is reported before anything changes
    patcher.preflight()
    if not patcher.filter_configured():
        raise ActionError("Imunify Email is disabled: run ie-config enable first")
    was = patcher.incoming_wanted()
    patcher.set_incoming_wanted(True)
    try:
        outcome = patcher.apply(cfg, enable=True)
    except Exception:
        patcher.set_incoming_wanted(was)
        raise
    _audit("enable-incoming", outcome.rebuilt)
    click.echo("Incoming filter enabled: inbound spam is delivered to the Junk folder" if outcome.rebuilt
               else "The incoming filter is already enabled")


@cli.command("disable-incoming", short_help="disable the incoming filter",
             help="Disable the incoming filter: inbound mail is delivered as without it. The daily counts are kept.")
def disable_incoming() -> None:
    cfg = config.load()
    patcher.preflight()
    was = patcher.incoming_wanted()
    patcher.set_incoming_wanted(False)
    try:
        outcome = patcher.apply(cfg, enable=True) if patcher.filter_configured() else None
    except Exception:
        patcher.set_incoming_wanted(was)
        raise
    _audit("disable-incoming", outcome is not None and outcome.rebuilt)
    click.echo("Incoming filter disabled: inbound mail is delivered unfiltered" if was or (outcome and outcome.rebuilt)
               else "The incoming filter is already disabled")


@cli.command(hidden=True, context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
             help="Called by postbuildeximconf: put the filter back after a rebuild that lost it.")
@click.option("--status", "build_status", default="ok")
@click.option("--version", "exim_version", default="")
@click.option("--hasdkim", default="")
@click.option("--hasmaildir", default="")
def reapply(build_status: str, exim_version: str, hasdkim: str, hasmaildir: str) -> None:
    if os.environ.get(patcher.LOCK_ENV) or build_status != "ok" or not rebuild_hook.installed():
        return   # our own rebuild, a failed one (the old config stays), or disabled meanwhile
    if patcher.apply(config.load(), enable=True).rebuilt:
        click.echo("imunifyemail: filter restored in Exim's configuration")


@cli.command(hidden=True, help="Called by the RPM after an upgrade: restart the services and re-apply the "
                              "filter, when Imunify Email is enabled.")
def upgrade() -> None:
    cfg = config.load()
    if not (rebuild_hook.installed() or patcher.filter_configured()):
        click.echo("Imunify Email is disabled: nothing to restart or re-apply")
        return
    snippets.render(cfg)
    patcher.preflight()
    services.restart()
    outcome = patcher.apply(cfg, enable=True)   # the new version's blocks, put back if a rebuild lost them
    rebuild_hook.install()
    click.echo("Imunify Email upgraded: services restarted, filter " +
               ("re-applied in Exim's configuration" if outcome.rebuilt else "already current in Exim's configuration"))


@cli.command("rspamd-learning", short_help="point Rspamd's learning at config.yaml's rspamd.redis",
             help="Write the files Rspamd's learning reads from /etc/rspamd: where its fuzzy storage and Bayes keep "
                  "what the administrator taught (config.yaml rspamd.redis: a local Redis, or a fleet's shared "
                  "one or its Sentinels) and the local fuzzy storage's secret keypair (made once); then restart "
                  "Rspamd when one changed (imunifyemail.rspamd_learning).")
@click.option("--no-restart", is_flag=True, help="Do not restart Rspamd (the RPM restarts it itself)")
@click.option("--remove", is_flag=True, hidden=True, help="Delete the files (the RPM's erase)")
def rspamd_learning_command(no_restart: bool, remove: bool) -> None:
    if remove:
        for path in rspamd_learning.remove():
            click.echo(f"{path}: removed")
        return
    cfg = config.load()
    changed = rspamd_learning.install(cfg["rspamd"]["redis"])
    for path in changed:
        click.echo(f"{path}: written")
    if not changed:
        click.echo("Rspamd's learning settings are current: nothing to change")
    elif not no_restart:
        proc = services.systemctl("try-restart", "rspamd.service")
        if proc.returncode != 0:
            raise ActionError(f"systemctl try-restart rspamd.service failed: {(proc.stderr or proc.stdout).strip()}")
        click.echo("Rspamd restarted")


@cli.group("rspamd-files", cls=Group, hidden=True,
           help="Called by the RPM: Imunify Email's Rspamd settings (/usr/share/imunifyemail/rspamd) included "
                "from a marked block in /etc/rspamd/local.d/NAME and override.d/NAME, beside the "
                "administrator's own settings there (imunifyemail.rspamd_files).")
def rspamd_files_group() -> None:
    pass


@rspamd_files_group.command("install", help="Put our block in each file (a new file where there is none); "
                                             "take it out of files the package no longer ships. Idempotent.")
def rspamd_files_install() -> None:
    _report_rspamd_changes(rspamd_files.install())


@rspamd_files_group.command("remove", help="Take our blocks out: every file as it was before the install.")
def rspamd_files_remove() -> None:
    _report_rspamd_changes(rspamd_files.remove())


@rspamd_files_group.command("check", help="Exit 1, naming the files, when install would change something.")
def rspamd_files_check() -> int:
    changes = rspamd_files.plan_install(rspamd_files.etc_dir(), rspamd_files.share_dir())
    for change in changes:
        click.echo(f"not current: {change.path}")
    return 1 if changes else 0


def _report_rspamd_changes(changes: List[rspamd_files.Change]) -> None:
    for change in changes:
        click.echo(f"imunifyemail: {change.describe()}")
    if not changes:
        click.echo("imunifyemail: Rspamd's files already as they should be")


@cli.command(hidden=True, short_help="send the notifications due now",
             help="Send the notifications due now (run every minute by imunifyemail-notify.timer). First, "
                  "cPanel's own hold of outgoing mail follows containment: whmapi1 hold_outgoing_email for "
                  "each contained account, release_outgoing_email once it is restored (only holds this job "
                  "placed). Then a digest "
                  "of the mail held, the accounts blocked and the mail released automatically since the last "
                  "one, by email to the administrator (CONTACTEMAIL in /etc/wwwacct.conf) and, when "
                  "notify_owner is on, to each account's owner (CONTACTEMAIL in /var/cpanel/users/<user>), at "
                  "most once per notify_period each and never empty; then the new events to the webhook, if "
                  "webhook_url is set. Digests are handed to the local MTA (sendmail) as notices the filter "
                  "lets through unscanned and uncounted. Settings: ie-cli settings. Prints what it sent; "
                  "fails when a digest or the webhook could not be delivered (they are tried again at the "
                  "next run).")
def notify() -> None:
    ctx = Context(create=False)   # the daemon creates the store, owned by its user
    if not ctx.database.exists():
        return   # no store yet: nothing has happened to notify about
    try:
        report = notify_job.run(ctx)
    finally:
        ctx.close()
    if report.busy:
        click.echo("another notification run is in progress: nothing done")
        return
    for name in report.holds.held:
        click.echo(f"cPanel: outgoing mail of contained account {name} held (whmapi1 hold_outgoing_email)")
    for name in report.holds.released:
        click.echo(f"cPanel: outgoing mail of restored account {name} released (whmapi1 release_outgoing_email)")
    for name, why in report.holds.failed:
        click.echo(f"cPanel: account {name}: {why} (tried again at the next run)", err=True)
    for addresses, count in report.sent:
        click.echo(f"digest sent to {', '.join(addresses)} ({count} event(s))")
    if report.posted or report.skipped:
        click.echo(f"webhook: {report.posted} event(s) posted"
                   + (f", {report.skipped} refused by the receiver and skipped" if report.skipped else ""))
    problems = [f"digest to {', '.join(a)} not sent: {why}" for a, why in report.failed]
    if report.webhook_error:
        problems.append(f"webhook: {report.webhook_error} (kept for the next run)")
    if problems:
        raise NotifyFailed("; ".join(problems))


class NotifyFailed(ActionError):
    pass


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The console script: root only, actions logged to syslog, errors as one line."""
    if os.geteuid() != 0:
        return ie_cli._error(f"{PROG} must be run as root")
    logs.to_syslog(PROG)
    return ie_cli.run(argv, group=cli, prog=PROG)


if __name__ == "__main__":
    sys.exit(main())
