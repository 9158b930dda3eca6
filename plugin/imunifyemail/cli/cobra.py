"""``--help`` rendered the way the original Go tool (cobra/pflag) prints it.

The seed document shows this layout for every command::

    <description>

    Usage:
      ie-cli whitelist [command]

    Available Commands:
      authuser    operation with the whitelist of the authenticated users (email addresses)

    Flags:
      -h, --help   help for whitelist

    Use "ie-cli whitelist [command] --help" for more information about a command.

Flags are sorted by long name, carry a type word (``string``, ``int``) unless
they are switches, and end in ``(default X)`` when the default is not the
type's zero value. :class:`Group` and :class:`Command` are drop-in click
classes; a command may set ``args_usage`` to describe its positional values.
"""
import json
from typing import List, Optional, Tuple

import click

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"]}
_MIN_NAME_PADDING = 11   # cobra's minNamePadding


def short_text(cmd: click.Command) -> str:
    """What a parent's "Available Commands" list says about ``cmd``."""
    return cmd.short_help or (cmd.help or "").strip().split("\n", 1)[0]


def _varname(param: click.Option) -> str:
    if param.is_flag or param.count:
        return ""
    if param.metavar:
        return param.metavar
    if getattr(param.type, "varname", None):   # a type of ours (durations.Duration: "duration")
        return param.type.varname
    if isinstance(param.type, click.types.IntParamType):
        return "int"
    if isinstance(param.type, click.types.FloatParamType):
        return "float"
    return "string"


def _default_note(param: click.Option) -> str:
    default = param.default
    if param.is_flag or param.multiple or callable(default) or default is None:
        return ""
    if isinstance(default, bool) or default in ("", 0):
        return ""
    if isinstance(default, str) and not getattr(param.type, "plain_default", False):
        return f" (default {json.dumps(default)})"
    return f" (default {default})"


def _flag_entries(cmd: click.Command, ctx: click.Context) -> List[Tuple[str, str, str]]:
    """(sort key, left column, help) for every visible option."""
    entries = []
    for param in cmd.get_params(ctx):
        if not isinstance(param, click.Option) or param.hidden:
            continue
        if param.name == "help":
            text = f"help for {ctx.info_name}"
        else:
            text = (param.help or "") + _default_note(param)
        for opts in (param.opts, param.secondary_opts):
            longs = [o for o in opts if o.startswith("--")]
            shorts = [o for o in opts if len(o) == 2 and o.startswith("-") and o != "--"]
            if not longs and not shorts:
                continue
            name = longs[0] if longs else shorts[0]
            left = f"  {shorts[0]}, {name}" if shorts and longs else f"      {name}"
            var = _varname(param) if opts is param.opts else ""
            if var:
                left += f" {var}"
            entries.append((name.lstrip("-"), left, text))
    return sorted(entries)


def _flags_block(cmd: click.Command, ctx: click.Context) -> str:
    entries = _flag_entries(cmd, ctx)
    width = max(len(left) for _, left, _ in entries)
    return "\n".join(f"{left:<{width}}   {text}".rstrip() for _, left, text in entries)


def _use_line(cmd: click.Command, ctx: click.Context) -> str:
    if isinstance(cmd, click.Group):
        return f"{ctx.command_path} [command]"
    args: Optional[str] = getattr(cmd, "args_usage", None)
    if args is None:
        args = " ".join(
            f"[{p.human_readable_name}...]" if p.nargs == -1 else p.human_readable_name
            for p in cmd.get_params(ctx) if isinstance(p, click.Argument))
    return f"{ctx.command_path} {args} [flags]" if args else f"{ctx.command_path} [flags]"


def render_help(cmd: click.Command, ctx: click.Context) -> str:
    top = (cmd.help or cmd.short_help or "").strip()
    out = f"{top}\n\n" if top else ""
    out += f"Usage:\n  {_use_line(cmd, ctx)}"
    if isinstance(cmd, click.Group):
        subs = [(name, cmd.get_command(ctx, name)) for name in cmd.list_commands(ctx)]
        subs = [(name, sub) for name, sub in subs if sub is not None and not sub.hidden]
        if subs:
            pad = max([_MIN_NAME_PADDING, *(len(name) for name, _ in subs)])
            out += "\n\nAvailable Commands:\n" + "\n".join(
                f"  {name:<{pad}} {short_text(sub)}".rstrip() for name, sub in subs)
    out += "\n\nFlags:\n" + _flags_block(cmd, ctx)
    if isinstance(cmd, click.Group):
        out += f'\n\nUse "{ctx.command_path} [command] --help" for more information about a command.'
    return out


class Command(click.Command):
    args_usage: Optional[str] = None

    def __init__(self, *args, args_usage: Optional[str] = None, **kwargs):
        super().__init__(*args, **kwargs)
        if args_usage is not None:
            self.args_usage = args_usage

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        formatter.write(render_help(self, ctx))


class Group(click.Group):
    command_class = Command

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        formatter.write(render_help(self, ctx))

    def resolve_command(self, ctx: click.Context, args: List[str]):
        name = args[0]
        if not ctx.resilient_parsing and not name.startswith("-") and self.get_command(ctx, name) is None:
            raise click.UsageError(f'unknown command "{name}" for "{ctx.command_path}"', ctx)
        return super().resolve_command(ctx, args)


Group.group_class = Group
