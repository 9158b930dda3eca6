"""The filesystem root contract (DESIGN §6).

Every absolute system path the product touches is resolved under
``$IMUNIFYEMAIL_ROOT`` (default ``/``), so tests, the sandbox and the RPM
scriptlet tests run against a cPanel-shaped tree without touching the host.
"""
import os
from pathlib import Path

ROOT_ENV = "IMUNIFYEMAIL_ROOT"

CONFIG_FILE = "/etc/imunifyemail/config.yaml"
USERDOMAINS = "/etc/userdomains"
CPANEL_USERS_DIR = "/var/cpanel/users"
WWWACCT_CONF = "/etc/wwwacct.conf"                        # the server's contact address and host name
FILTER_SOCKET = "/var/run/imunifyemail/filter.sock"
CONTROL_SOCKET = "/var/run/imunifyemail/control.sock"     # the daemon, for the web app
ADMIN_SOCKET = "/var/run/imunifyemail/admin.sock"         # the web app, for WHM (root only)
USER_SOCKET = "/var/run/imunifyemail/user.sock"           # the web app, for cPanel users
RSPAMD_SOCKET = "/var/run/rspamd/normal.sock"          # Rspamd's scanner (rpm/rspamd/override.d), config's default
RSPAMD_ETC = "/etc/rspamd"                             # its local.d/, override.d/ get our blocks (rspamd_files)
RSPAMD_SHARE = "/usr/share/imunifyemail/rspamd"        # what those blocks include (the package's rpm/rspamd/)
RSPAMD_CONTROLLER = "/var/run/rspamd/controller.sock"  # Rspamd's controller: learning (rpm/rspamd/override.d)
REDIS_SOCKET = "/var/run/redis/redis.sock"             # the local Redis of Rspamd's fuzzy storage and Bayes
WEB_SECRET = "/var/imunifyemail/web-secret"
STATE_DIR = "/var/imunifyemail"
QUARANTINE_DIR = "/var/imunifyemail/quarantine"
STORAGE_DIR = "/var/imunifyemail/quarantine/storage"
DATABASE = "/var/imunifyemail/quarantine/storage/quarantine.db"
METRICS_DIR = "/var/imunifyemail/metrics"
METRICS_FILE = "/var/imunifyemail/metrics/imunifyemail.prom"   # for node_exporter's textfile collector
# Exim and cPanel (the Exim integration, ie-config)
EXIM_CONF = "/etc/exim.conf"
EXIM_CONF_LOCAL = "/etc/exim.conf.local"
LOCALDOMAINS = "/etc/localdomains"
BUILDEXIMCONF = "/usr/local/cpanel/scripts/buildeximconf"
RESTARTSRV_EXIM = "/usr/local/cpanel/scripts/restartsrv_exim"
POSTBUILDEXIMCONF = "/usr/local/cpanel/scripts/postbuildeximconf"
SYSTEMCTL = "/usr/bin/systemctl"
EXIM_LOCK = "/var/imunifyemail/exim-config.lock"
NOTIFY_LOCK = "/var/imunifyemail/notify.lock"             # one notification run at a time
WHMAPI1 = "/usr/local/cpanel/bin/whmapi1"
INCOMING_ON = "/var/imunifyemail/incoming-filter.on"       # ie-config enable-incoming (root's; exim.conf.local follows)
CPANEL_HOLDS = "/var/imunifyemail/cpanel-holds.json"      # root's: the cPanel holds of contained accounts it placed


def root() -> Path:
    return Path(os.environ.get(ROOT_ENV) or "/")


def system_path(path: str) -> Path:
    """Resolve an absolute system path under the configured root."""
    if not path.startswith("/"):
        raise ValueError(f"system path must be absolute: {path!r}")
    return root() / path.lstrip("/")
