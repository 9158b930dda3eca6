"""Recording stand-ins for cPanel's registration programs, as the RPM's scriptlets call them:
``register_appconfig``, ``unregister_appconfig``, ``install_plugin``, ``uninstall_plugin`` and
``manage_hooks``, installed at their real paths under a root.

They keep the state the real ones keep, where the real ones keep it (CPANEL.md; cPanel 11.120's
``bin/register_appconfig``, ``Cpanel/AppConfig/Register.pm``, ``scripts/install_plugin``,
``Cpanel/Plugin/Install.pm``, ``Cpanel/Themes/Serializer/DynamicUI.pm``, ``bin/manage_hooks``,
``Cpanel/Hooks/Manage.pm``), and refuse what they refuse:

* AppConfig: ``/var/cpanel/apps/<name>.conf`` (0600, the file as given; ``name`` from the file or
  its file name; ``url`` and a valid ``name`` required); unregister by file or by name.
* cPanel plugin: ``<theme root>/dynamicui/dynamicui_<id>.conf`` (sorted ``key=>value`` pairs), the
  icon copied to ``<theme root>/branding/<id>.<ext>`` (SVG or PNG, must exist), the feature file
  ``/usr/local/cpanel/whostmgr/addonfeatures/<feature>`` (``feature:description``); the theme
  must exist and ``install.json`` must be there.
* Hooks: ``/var/cpanel/hooks/data/<Category>/<Event>.yaml`` (a list of entries; written as JSON,
  which YAML reads); without ``--manual`` the script is asked ``--describe``; a script must be
  executable; adding the same script and stage twice is skipped; deleting what is not there fails.

Every call is appended to ``/var/log/cpanel-standins.log`` (as :mod:`devtools.cpanel_standins`).
"""
from pathlib import Path

from devtools.cpanel_standins import _write

REGISTER_APPCONFIG = "/usr/local/cpanel/bin/register_appconfig"
UNREGISTER_APPCONFIG = "/usr/local/cpanel/bin/unregister_appconfig"
INSTALL_PLUGIN = "/usr/local/cpanel/scripts/install_plugin"
UNINSTALL_PLUGIN = "/usr/local/cpanel/scripts/uninstall_plugin"
MANAGE_HOOKS = "/usr/local/cpanel/bin/manage_hooks"
APPS_DIR = "/var/cpanel/apps"
THEMES_DIR = "/usr/local/cpanel/base/frontend"
ADDON_FEATURES = "/usr/local/cpanel/whostmgr/addonfeatures"
HOOKS_DATA = "/var/cpanel/hooks/data"

_APPCONFIG = r'''
import re
def under(path):
    return os.path.join(ROOT, path.lstrip("/"))
def fail(message):
    print(message)
    sys.exit(1)
def parse(text):
    return dict(line.strip().split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#"))
record(PROGRAM)
if len(sys.argv) != 2 or sys.argv[1].lstrip("-").startswith("help"):
    fail("usage: %s <conf_file>" % PROGRAM)
arg = sys.argv[1]
if os.path.isfile(arg) and os.access(arg, os.R_OK):
    text = open(arg).read()
    keys = parse(text)
    name = keys.get("name") or re.sub(r"\.conf$", "", os.path.basename(arg))
elif PROGRAM == "unregister_appconfig" and re.match(r"^[a-zA-Z0-9_-]+$", arg):
    text, keys, name = "", {}, arg
else:
    fail("The 'conf_file' must be readable and a plain file.")
if not re.match(r"^[a-zA-Z0-9_-]+$", name):
    fail("App names (%s) may only contain letters, numbers, - and _" % name)
target = os.path.join(under(APPS_DIR), name + ".conf")
if PROGRAM == "register_appconfig":
    if keys.get("service") not in ("whostmgr", "cpanel", "webmail"):
        fail("service must be whostmgr, cpanel or webmail")
    if not keys.get("url"):
        fail("url is missing from appconfig data. You must provide at least one url.")
    os.makedirs(under(APPS_DIR), exist_ok=True)
    with open(target, "w") as fh:
        fh.write(text)
    os.chmod(target, 0o600)
    print("%s registered" % name)
else:
    try:
        os.unlink(target)
        print("%s unregistered" % name)
    except OSError as exc:
        print("Failed to remove file: %s : %s" % (target, exc.strerror))
sys.exit(0)
'''

_PLUGIN = r'''
import re, shutil
def under(path):
    return os.path.join(ROOT, path.lstrip("/"))
def fail(message):
    print("error: " + message, file=sys.stderr)
    sys.exit(1)
record(PROGRAM)
args, theme = [], "jupiter"
it = iter(sys.argv[1:])
for a in it:
    if a == "--theme":
        theme = next(it, "")
    elif a.startswith("--theme="):
        theme = a.split("=", 1)[1]
    else:
        args.append(a)
if len(args) != 1:
    fail("No archive given!")
staging = args[0]
if not os.path.exists(staging):
    fail("No file found at %s" % staging)
if not os.path.isdir(staging):
    fail("Unrecognized archive format.")   # the stand-in takes a directory only
if not os.path.exists(os.path.join(staging, "install.json")):
    print("install.json is missing from the plugin archive, cannot process")
    sys.exit(1)
docroot = os.path.join(under(THEMES_DIR), theme)
if not os.path.isdir(docroot):
    fail("The specified theme [%s] does not exist." % theme)
items = json.load(open(os.path.join(staging, "install.json")))
items = items if isinstance(items, list) else items.get("items", [])
links = [i for i in items if i.get("type") == "link"]
for link in links:
    for key in ("id", "name", "group_id", "uri"):
        if not isinstance(link.get(key), str) or not link[key]:
            fail("install.json: link without %s" % key)
    feature = link.get("feature") or link["id"]
    if not re.match(r"^[A-Za-z0-9_-]+$", feature):
        fail("Feature name for %s is invalid: %s" % (link["name"], feature))
    icon = os.path.join(staging, link.get("icon", ""))
    ext = os.path.splitext(icon)[1].lstrip(".").lower()
    install = PROGRAM == "install_plugin"
    if install and (not link.get("icon") or not os.path.isfile(icon)):
        fail("Icon file %s does not exist." % icon)
    if install and ext not in ("svg", "png"):
        fail("Link plugins require icon images to be in SVG or PNG format. %s does not meet this requirement." % icon)
    dui = os.path.join(docroot, "dynamicui", "dynamicui_%s.conf" % link["id"])
    icon_target = os.path.join(docroot, "branding", "%s.%s" % (link["id"], ext))
    feature_file = os.path.join(under(ADDON_FEATURES), feature)
    if install:
        entry = {"file": link["id"], "description": "$LANG{'%s'}" % link["name"],
                 "itemdesc": "$LANG{'%s'}" % link["name"], "group": link["group_id"], "url": link["uri"],
                 "feature": feature, "itemorder": link.get("order"), "target": link.get("target"),
                 "imgtype": "icon", "subtype": "img", "type": "image"}
        os.makedirs(os.path.dirname(dui), exist_ok=True)
        os.makedirs(os.path.dirname(icon_target), exist_ok=True)
        shutil.copyfile(icon, icon_target)
        with open(dui, "w") as fh:
            fh.write(",".join("%s=>%s" % (k, entry[k]) for k in sorted(entry) if entry[k] is not None) + "\n")
        os.makedirs(os.path.dirname(feature_file), exist_ok=True)
        if not os.path.exists(feature_file):
            with open(feature_file, "w") as fh:
                fh.write("%s:%s\n" % (feature, link.get("description") or link["name"]))
    else:
        for path in (dui, feature_file) + tuple(
                os.path.join(docroot, "branding", "%s.%s" % (link["id"], e)) for e in ("svg", "png")):
            if os.path.isfile(path):
                os.unlink(path)
print("Plugin installed ok" if PROGRAM == "install_plugin" else "Plugin uninstalled ok")
sys.exit(0)
'''

_MANAGE_HOOKS = r'''
import re, subprocess, uuid
def under(path):
    return os.path.join(ROOT, path.lstrip("/"))
def fail(message):
    print(message, file=sys.stderr)
    sys.exit(1)
record("manage_hooks")
if os.geteuid() != 0:
    print("This script may only be executed by root")
    sys.exit(1)
positional, opts = [], {}
for a in sys.argv[1:]:
    if a.startswith("--"):
        key, _, value = a[2:].partition("=")
        opts[key] = value if _ else True
    else:
        positional.append(a)
action = positional[0] if positional else ""

def db_file(category, event):
    if re.search(r"[^a-zA-Z0-9:_]", category + event):
        fail("invalid category or event name")
    return os.path.join(under(HOOKS_DATA), category, event + ".yaml")

def load(category, event):
    try:
        return json.load(open(db_file(category, event)))
    except FileNotFoundError:
        return []

def save(category, event, entries):
    path = db_file(category, event)
    if not entries:
        if os.path.exists(path):
            os.unlink(path)
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as fh:
        json.dump(entries, fh, indent=1)

def described(script):
    if not (os.path.isfile(script) and os.access(script, os.X_OK)):
        fail('The provided script hook "%s" does not exist on the filesystem' % script)
    out = subprocess.run([script, "--describe"], capture_output=True, text=True)
    if out.stderr:
        print("The script, when executed with --describe printed data via STDERR: " + out.stderr, file=sys.stderr)
    try:
        data = json.loads(out.stdout)
    except ValueError:
        fail("Hook failed to return proper JSON data")
    return data if isinstance(data, list) else [data]

def wanted(exectype, script):
    if opts.get("manual"):
        for key in ("category", "event", "stage"):
            if not isinstance(opts.get(key), str):
                fail('The "%s" management action requires --category, --event and --stage' % action)
        return [{"category": opts["category"], "event": opts["event"], "stage": opts["stage"],
                 "hook": script, "exectype": exectype}]
    return described(script)

if action == "list":
    out = {}
    base = under(HOOKS_DATA)
    for category in sorted(os.listdir(base)) if os.path.isdir(base) else []:
        for name in sorted(os.listdir(os.path.join(base, category))):
            out.setdefault(category, {})[name[:-5]] = json.load(open(os.path.join(base, category, name)))
    print(json.dumps(out))
    sys.exit(0)
if action not in ("add", "delete", "del") or len(positional) != 3:
    fail("usage: manage_hooks add|delete|list script PATH [--manual --category=C --event=E --stage=S]")
exectype, script = positional[1], positional[2]
if exectype != "script":
    fail('The only two valid exectypes are "script" and "module" (the stand-in takes scripts)')
for hook in wanted(exectype, script):
    category, event = hook["category"], hook["event"]
    entries = load(category, event)
    path = os.path.realpath(hook["hook"].split()[0])
    same = [e for e in entries if e["stage"] == hook["stage"] and os.path.realpath(e["hook"].split()[0]) == path]
    if action == "add":
        if not os.access(path, os.X_OK):
            fail("The provided script hook (%s) is not executable" % hook["hook"])
        if same:
            print("Adding hook for %s::%s to hooks registry was skipped, as hook script action '%s' is already "
                  "registered" % (category, event, hook["hook"]))
            continue
        weight = entries[-1]["weight"] + 100 if entries else 100
        entries.append({"exectype": exectype, "hook": hook["hook"], "stage": hook["stage"], "weight": weight,
                        "escalateprivs": 0, "id": uuid.uuid4().hex})
        save(category, event, entries)
        print("Added hook for %s::%s to hooks registry" % (category, event))
    else:
        if not entries:
            fail("Provided event of '%s' in category '%s' does not exist in hooks registry or is malformed. "
                 "(this may indicate that the specified hook is not installed)" % (event, category))
        if not same:
            fail("No matching hooks found for '%s' in category '%s'" % (event, category))
        save(category, event, [e for e in entries if e not in same[:1]])
        print("Deleted hook %s for %s::%s in hooks registry" % (hook["hook"], category, event))
sys.exit(0)
'''


def install(root: Path, runtime_root: str = "") -> None:
    """Write the stand-ins under ``root``; they act on ``runtime_root`` (default ``root``: a
    different one when they run inside a namespace where ``root`` is mounted as ``/``)."""
    root = Path(root)
    base = {"ROOT": runtime_root or str(root)}
    for program, path in (("register_appconfig", REGISTER_APPCONFIG), ("unregister_appconfig", UNREGISTER_APPCONFIG)):
        _write(root / path.lstrip("/"), {**base, "PROGRAM": program, "APPS_DIR": APPS_DIR}, _APPCONFIG)
    for program, path in (("install_plugin", INSTALL_PLUGIN), ("uninstall_plugin", UNINSTALL_PLUGIN)):
        _write(root / path.lstrip("/"), {**base, "PROGRAM": program, "THEMES_DIR": THEMES_DIR,
                                         "ADDON_FEATURES": ADDON_FEATURES}, _PLUGIN)
    _write(root / MANAGE_HOOKS.lstrip("/"), {**base, "HOOKS_DATA": HOOKS_DATA}, _MANAGE_HOOKS)
