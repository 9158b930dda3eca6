"""ie-cli as a whole: help texts, version, filter settings, the error contract."""
import logging
import re

import pytest

from imunifyemail import __version__
from tests.cli_helpers import assert_error


# The seed's commands, and ours (audit, incoming, settings) in the same alphabetical listing.
ROOT_HELP = """\
Imunify Email quarantine CLI application

Usage:
  ie-cli [command]

Available Commands:
  accounts            interaction with accounts in the quarantine
  am                  interaction with the Activity Monitor, same API as in ActivityMonitor UI
  audit               the audit trail: every change, who made it and from where
  emails              interaction with emails in the quarantine
  filter-settings     toggle the filter settings, without any parameters - returns the current settings
  incoming            the incoming filter: daily spam/ham counts, each account's switch
  quarantine-defaults the default quarantine space and releases limit of accounts
  settings            show or change the server settings: notifications, webhook, automatic release, containment, metrics
  version             print the ImunifyEmail CLI version
  whitelist           interaction with the whitelist of authenticated users, senders and recipients

Flags:
  -h, --help   help for ie-cli

Use "ie-cli [command] --help" for more information about a command.
"""

WHITELIST_HELP = """\
List/Add/Delete authenticated users, senders and recipients to/from whitelist.
Where :
    - authenticated user could be only an email address
    - sender and recipient could be one of domain or email address

Usage:
  ie-cli whitelist [command]

Available Commands:
  authuser    operation with the whitelist of the authenticated users (email addresses)
  recipient   operation with the whitelist of recipients (email addresses and domains)
  sender      operation with the whitelist of senders (email addresses and domains)

Flags:
  -h, --help   help for whitelist

Use "ie-cli whitelist [command] --help" for more information about a command.
"""


# -- help -------------------------------------------------------------------

@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_root_help(ie, flag):
    result = ie.invoke(flag)
    assert (result.exit_code, result.stdout, result.stderr) == (0, ROOT_HELP, "")


def test_no_command_prints_help(ie):
    assert ie.invoke().stdout == ROOT_HELP


def test_whitelist_help_is_the_seed_text_with_recipients(ie):
    assert ie.invoke("whitelist", "--help").stdout == WHITELIST_HELP
    assert ie.invoke("whitelist", "-h").stdout == WHITELIST_HELP


def test_emails_list_help(ie):
    out = ie.invoke("emails", "list", "--help").stdout
    usage, flags = out.split("\n\nUsage:\n", 1)[1].split("\n\nFlags:\n")
    assert usage == "  ie-cli emails list [flags]"
    lines = flags.rstrip("\n").splitlines()
    assert lines[0].startswith("  -a, --account string   ") and lines[0].endswith('(default "root")')
    assert lines[1].startswith("  -h, --help ") and lines[1].endswith("help for list")
    assert lines[2].startswith("      --json ")
    assert lines[3].startswith("  -l, --limit int ") and lines[3].endswith("(default 25)")
    assert lines[4].startswith("      --offset int ") and "(default" not in lines[4]
    names = [line.split()[1] if line.startswith("  -") else line.split()[0] for line in lines]
    assert names == sorted(names)
    starts = {re.match(r"^ +(?:-\w, )?--[\w-]+(?: \w+)? +", line).end() for line in lines}
    assert starts == {len("      --recipient string   ")}, "help texts start in one column"


def test_accounts_edit_help(ie):
    out = ie.invoke("accounts", "edit", "-h").stdout
    assert "\n\nUsage:\n  ie-cli accounts edit [flags]\n\nFlags:\n" in out
    assert "  -a, --account string         " in out
    assert "      --limit int              New quarantine space limit in bytes. Use -1 to set common default value" in out
    assert "  -r, --releases-limit int     " in out
    assert "  -s, --storage-capacity int   New quarantine space limit in MB" in out
    assert "      --state string           " in out
    assert "  -h, --help                   help for edit\n" in out


def test_leaf_help_with_values(ie):
    out = ie.invoke("whitelist", "sender", "remove", "--help").stdout
    assert "Usage:\n  ie-cli whitelist sender remove [value1 value2 ... valueN] [flags]\n" in out
    assert out.endswith("Flags:\n  -h, --help   help for remove\n")
    out = ie.invoke("whitelist", "sender", "add", "--help").stdout   # issue 19: for a while
    assert "Usage:\n  ie-cli whitelist sender add [value1 value2 ... valueN] [flags]\n" in out
    assert "  --for DURATION" in out and "  --until TIME" in out


def test_help_needs_neither_config_nor_database(ie):
    ie.write_config("rspamd: [broken\n")
    assert ie.invoke("emails", "--help").exit_code == 0
    assert ie.invoke("version").exit_code == 0


# -- version and filter settings --------------------------------------------

def test_version(ie):
    result = ie.invoke("version")
    assert (result.exit_code, result.stdout) == (0, f"ie-cli version {__version__}\n")


def test_filter_settings_show_and_toggle(ie):
    assert ie.invoke("filter-settings").stdout == '{\n    "allow_winexec": false,\n    "spam_filter": true\n}\n'
    assert ie.invoke("filter-settings", "--allow-winexec").json() == {"allow_winexec": True, "spam_filter": True}
    assert ie.invoke("filter-settings", "--no-spam-filter").json() == {"allow_winexec": True, "spam_filter": False}
    assert ie.invoke("filter-settings").json() == {"allow_winexec": True, "spam_filter": False}
    both = ie.invoke("filter-settings", "--disallow-winexec", "--spam-filter").json()
    assert both == {"allow_winexec": False, "spam_filter": True}


def test_filter_settings_conflicting_flags_change_nothing(ie):
    assert_error(ie.invoke("filter-settings", "--spam-filter", "--no-spam-filter", "--allow-winexec"),
                 "--spam-filter and --no-spam-filter")
    assert ie.invoke("filter-settings").json() == {"allow_winexec": False, "spam_filter": True}


# -- errors -----------------------------------------------------------------

def test_usage_errors_are_one_line_exit_1(ie):
    assert_error(ie.invoke("nonsense"), 'unknown command "nonsense" for "ie-cli"')
    assert_error(ie.invoke("emails", "list", "--bogus"), "--bogus")
    assert_error(ie.invoke("emails", "list", "extra"), "extra")
    assert_error(ie.invoke("emails", "show", "--id"), "--id")


def test_broken_config_names_the_key(ie):
    ie.write_config("reinject:\n  timeout: -5\n")
    assert_error(ie.invoke("emails", "list"), "config.yaml", "reinject.timeout")
    ie.write_config("quarantine:\n  default_limt_bytes: 5\n")
    assert_error(ie.invoke("accounts", "list"), "quarantine.default_limt_bytes", "unknown key")
    ie.write_config("rspamd: [broken\n")
    assert_error(ie.invoke("whitelist", "sender", "list"), "not valid YAML")


def test_console_script_errors(ie):
    result = ie.run_script("emails", "show", "--id", "not-a-uuid")
    assert_error(result, 'invalid email id "not-a-uuid"')
    assert "Traceback" not in result.stderr
    assert_error(ie.run_script("emails", "list", "--limit"), "--limit")
    ie.write_config("reinject:\n  sendmail: relative/path\n")
    assert_error(ie.run_script("emails", "release", "--ids", "0f1e2d3c-4b5a-6978-8695-a4b3c2d1e0f9"),
                 "reinject.sendmail")
    ok = ie.run_script("version")
    assert (ok.exit_code, ok.stdout, ok.stderr) == (0, f"ie-cli version {__version__}\n", "")


def test_refuses_to_run_as_non_root(ie):
    # Needs a checkout readable by other users, as the daemon tests do.
    result = ie.run_script("emails", "list",
                           prefix=["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"])
    assert_error(result, "ie-cli must be run as root")


def test_a_webhook_url_is_logged_and_audited_with_its_scheme_and_host_only(ie, caplog):
    url = "https://bot:pa55@hooks.slack.com/services/T000/B000/s3cr3tpath?token=t0ken"
    with caplog.at_level(logging.INFO, logger="imunifyemail"):
        assert ie.invoke("settings", "--webhook-url", url, "--json").json()["webhook_url"] == url   # usable as set
        assert ie.invoke("settings", "--webhook-url", "").exit_code == 0
    lines = [r.getMessage() for r in caplog.records if r.name == "imunifyemail.audit"]
    assert lines == ["server settings by root (cli) webhook_url={'from': '', 'to': 'https://hooks.slack.com/…'}: ok",
                     "server settings by root (cli) webhook_url={'from': 'https://hooks.slack.com/…', 'to': ''}: ok"]
    for secret in ("s3cr3tpath", "t0ken", "pa55", "services"):
        assert secret not in caplog.text and secret not in ie.invoke("audit", "list", "--json").stdout
