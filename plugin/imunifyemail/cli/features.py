"""``ie-cli settings``: the server's features (notifications, webhook, automatic release, containment,
metrics). Without flags it prints them; with flags it changes those given, all or none.

Switches take ``on``/``off`` (also true/false, yes/no, 1/0); ``--webhook-url ""`` removes the webhook.
Rules are in :mod:`imunifyemail.core.features` and :mod:`imunifyemail.ops.features`.
"""
from typing import Any, Dict

import click

from .. import shapes
from ..core.features import SETTINGS, SWITCH_OFF, SWITCH_ON, switched_on
from ..ops import caller as callers
from ..ops import features as feature_ops
from . import output
from .cobra import Command

ADMIN = callers.admin(callers.CLI)
SWITCH = click.Choice([w for pair in zip(SWITCH_ON, SWITCH_OFF) for w in pair], case_sensitive=False)
_TYPES = {"switch": SWITCH, "seconds": click.INT, "count": click.INT, "url": click.STRING}


def _options(fn):
    for setting in reversed(SETTINGS):
        metavar = {"switch": "on|off", "url": "URL"}.get(setting.kind, "int")
        fn = click.option(setting.flag, setting.name, type=_TYPES[setting.kind], metavar=metavar,
                          help=setting.help)(fn)
    return fn


def _value(kind: str, raw: Any) -> Any:
    return switched_on(raw) if kind == "switch" else raw


@click.command("settings", cls=Command, short_help="show or change the server settings: notifications, webhook, automatic "
                                      "release, containment, metrics",
               help="Show the server settings beyond the filter: notifications, the webhook, automatic release "
                    "of rate-limited mail, containment of a compromised account and metrics. Given flags "
                    "change those settings (all of them or, on any invalid value, none).")
@_options
@click.option("--json", "as_json", is_flag=True, help="Output in JSON format")
@click.pass_obj
def settings(env, as_json: bool, **given: Any) -> None:
    changes: Dict[str, Any] = {s.name: _value(s.kind, given[s.name]) for s in SETTINGS
                               if given.get(s.name) is not None}
    current = feature_ops.change(env, ADMIN, changes) if changes else feature_ops.current(env)
    values = shapes.features(current)
    click.echo(output.to_json(values, indent=2) if as_json else output.features_text(values))
