"""The Grafana dashboard and the Prometheus alert rules the package ships (docs/monitoring/): promtool
accepts the rules and fires each alert on synthetic series, every dashboard query is PromQL promtool
parses, and every metric either of them names is one the real daemon writes."""
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from devtools import samples
from tests.test_daemon_metrics import prom, samples_of, wait_metrics

REPO = Path(__file__).resolve().parent.parent
RULES = REPO / "docs/monitoring/imunifyemail-alerts.yml"
DASHBOARD = REPO / "docs/monitoring/imunifyemail-dashboard.json"
# Grafana's variables, as Prometheus would see them once Grafana substituted them.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$instance": ".*"}



def promtool(*args: str) -> subprocess.CompletedProcess:
    exe = shutil.which("promtool")
    assert exe, "promtool not found: it comes with Debian's prometheus package (make deps installs it)"
    return subprocess.run([exe, *args], capture_output=True, text=True)


def alerts():
    return [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"] if "alert" in r]


def dashboard_queries():
    """Every PromQL the dashboard runs (its panels' targets) as Prometheus gets it, and its variables'."""
    dash = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    variables = [v["query"]["query"] for v in dash["templating"]["list"] if v["type"] == "query"]
    for name, value in GRAFANA_VARIABLES.items():
        exprs = [e.replace(name, value) for e in exprs]
    assert exprs and not [e for e in exprs if "$" in e], "a Grafana variable this test does not know"
    return exprs, variables


_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless",
             "offset", "inf", "nan"}


def metric_names(expr: str) -> set:
    """The metric names a PromQL expression selects: what is left once strings, label matchers, ranges,
    grouping label lists, numbers, function names and keywords are taken out."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    expr = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", expr)
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    expr = re.sub(r"\boffset\s+\S+", " ", expr)
    expr = re.sub(r"(?<![\w:])\d+(\.\d+)?([eE][+-]?\d+)?", " ", expr)
    return {m.group() for m in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr)
            if m.group().lower() not in _KEYWORDS and not expr[m.end():].lstrip().startswith("(")}


def test_metric_names_finds_every_selected_metric_and_nothing_else():
    assert metric_names('sum by (le) (rate(x_bucket{a="b(c)",le!="1"}[5m])) / on (instance) group_left up') == \
        {"x_bucket", "up"}
    assert metric_names("histogram_quantile(0.95, y) > 2e3 and z offset 1h unless time() - w") == {"y", "z", "w"}


def test_promtool_accepts_the_alert_rules_and_refuses_a_broken_copy(tmp_path):
    checked = promtool("check", "rules", str(RULES))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(alerts())} rules found" in checked.stdout
    broken = tmp_path / "broken.yml"   # the same check does fail on a bad expression
    broken.write_text(RULES.read_text().replace("imunifyemail_quarantine_below_floor == 1",
                                                "imunifyemail_quarantine_below_floor ==", 1))
    assert promtool("check", "rules", str(broken)).returncode != 0


def test_every_dashboard_query_is_promql_promtool_parses(tmp_path):
    exprs, _ = dashboard_queries()
    as_rules = tmp_path / "dashboard-queries.yml"   # recording rules: promtool parses each expression
    as_rules.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:query_{n}", "expr": e} for n, e in enumerate(exprs)]}]}))
    checked = promtool("check", "rules", str(as_rules))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(exprs)} rules found" in checked.stdout


def _alert(name, at, series, fired):
    return {"interval": "1m", "input_series": series,
            "alert_rule_test": [{"eval_time": at, "alertname": name, "exp_alerts": fired}]}


def test_each_alert_fires_on_synthetic_series_and_not_before_its_time(tmp_path):
    i = 'instance="mx1:9100"'
    tests = [
        # one unreachable scan a minute from minute 3: firing 2 minutes later
        _alert("ImunifyEmailRspamdUnreachable", "4m",
               [{"series": f"imunifyemail_rspamd_unreachable_total{{{i}}}", "values": "0 0 0 1 2 3 4 5 6 7"}], []),
        _alert("ImunifyEmailRspamdUnreachable", "6m",
               [{"series": f"imunifyemail_rspamd_unreachable_total{{{i}}}", "values": "0 0 0 1 2 3 4 5 6 7"}],
               [{"exp_labels": {"severity": "critical", "instance": "mx1:9100"}, "exp_annotations": {
                   "summary": "Rspamd does not answer imunifyemaild on mx1:9100",
                   "description": "4 scan(s) in the last 5 minutes got no usable answer from Rspamd. Check "
                                  "`systemctl status rspamd` and `ie-config status`."}}]),
        # a message waiting, then three: 15 minutes after the first
        _alert("ImunifyEmailMailWaitingForScanner", "14m",
               [{"series": f"imunifyemail_exim_queue_waiting_for_scanner{{{i}}}", "values": "0 1x14 3x10"}], []),
        _alert("ImunifyEmailMailWaitingForScanner", "17m",
               [{"series": f"imunifyemail_exim_queue_waiting_for_scanner{{{i}}}", "values": "0 1x14 3x10"}],
               [{"exp_labels": {"severity": "warning", "instance": "mx1:9100"}, "exp_annotations": {
                   "summary": "Mail waits for the scanner on mx1:9100",
                   "description": "3 message(s) in Exim's queue have been waiting for imunifyemail's verdict for "
                                  "15 minutes or more. Check `ie-config status` and imunifyemaild's log."}}]),
        # demo1 contained from minute 2: at once, with its name
        _alert("ImunifyEmailAccountContained", "3m",
               [{"series": f'imunifyemail_account_contained{{{i},account="demo1"}}', "values": "_ _ 1 1 1"},
                {"series": f"imunifyemail_accounts_contained{{{i}}}", "values": "0 0 1 1 1"}],
               [{"exp_labels": {"severity": "warning", "instance": "mx1:9100", "account": "demo1"},
                 "exp_annotations": {
                     "summary": "Account demo1 contained on mx1:9100",
                     "description": "imunifyemail blocked account demo1 automatically: its outgoing mail is held. "
                                    "Review its quarantine (WHM > Plugins > Imunify Email), then restore it with "
                                    "`ie-cli accounts edit -a demo1 --state active`."}}]),
        _alert("ImunifyEmailAccountContained", "1m",
               [{"series": f'imunifyemail_account_contained{{{i},account="demo1"}}', "values": "_ _ 1 1 1"}], []),
        # below the floor from minute 2
        _alert("ImunifyEmailQuarantineDiskFloor", "4m",
               [{"series": f"imunifyemail_quarantine_below_floor{{{i}}}", "values": "0 0 1 1 1 1"}],
               [{"exp_labels": {"severity": "critical", "instance": "mx1:9100"}, "exp_annotations": {
                   "summary": "Quarantine filesystem below its free-space floor on mx1:9100",
                   "description": "The quarantine's filesystem is below its floor (quarantine.min_free_bytes / "
                                  "min_free_inodes): mail that would be held is deferred in Exim's queue. Free "
                                  "space or purge old held mail (`ie-cli emails remove`, `ie-cli accounts "
                                  "remove`)."}}]),
        _alert("ImunifyEmailQuarantineDiskFloor", "4m",
               [{"series": f"imunifyemail_quarantine_below_floor{{{i}}}", "values": "0x6"}], []),
        _alert("ImunifyEmailQuarantineDiskNearFloor", "20m",
               [{"series": f"imunifyemail_quarantine_free_bytes{{{i}}}", "values": "100x30"},
                {"series": f"imunifyemail_quarantine_floor_bytes{{{i}}}", "values": "64x30"}],
               [{"exp_labels": {"severity": "warning", "instance": "mx1:9100"}, "exp_annotations": {
                   "summary": "Quarantine filesystem nearly at its free-space floor on mx1:9100",
                   "description": "Free space on the quarantine's filesystem is less than twice its floor; below "
                                  "the floor held mail is deferred."}}]),
    ]
    assert {t["alert_rule_test"][0]["alertname"] for t in tests if t["alert_rule_test"][0]["exp_alerts"]} == \
        {a["alert"] for a in alerts()}   # each shipped alert fires in one of them
    unit = tmp_path / "alerts.test.yml"
    unit.write_text(yaml.safe_dump({"rule_files": [str(RULES)], "evaluation_interval": "1m", "tests": tests}))
    tested = promtool("test", "rules", str(unit))
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


@pytest.mark.service
def test_every_metric_the_dashboard_and_the_alerts_name_is_one_the_daemon_writes(make_root, rspamd):
    """The names come from the file a real daemon wrote, with mail held and an account contained, so
    that every family it can write is there."""
    r = make_root(rspamd.url, metrics={"interval": 0.1})
    r.cli("settings", "--containment-threshold", "1")
    r.start()
    assert [r.send(samples.gtube(subject=f"spam {n}")).verdict for n in range(2)] == ["hold", "hold"]
    written = wait_metrics(r, "demo1 contained", lambda m: m.get("imunifyemail_accounts_contained") == 1)
    assert written["imunifyemail_account_contained{account=demo1}"] == 1
    assert written["imunifyemail_quarantine_below_floor"] == 0
    assert written["imunifyemail_quarantine_free_bytes"] > written["imunifyemail_quarantine_floor_bytes"] > 0
    daemon_writes = {name.split("{")[0] for name in samples_of(prom(r).read_text())}

    exprs, variables = dashboard_queries()
    used = {}
    for where, expr in [*(("dashboard", e) for e in exprs), *(("alert " + a["alert"], a["expr"]) for a in alerts())]:
        names = metric_names(expr)
        assert names, f"{where}: no metric in {expr!r}"
        for name in names:
            used.setdefault(name, []).append(where)
    for query in variables:   # Grafana's label_values(metric, label)
        used.setdefault(re.fullmatch(r"label_values\((\w+),\s*\w+\)", query).group(1), []).append("variable")
    unknown = {name: where for name, where in used.items() if name not in daemon_writes}
    assert unknown == {}, f"not written by the daemon: {unknown}"
