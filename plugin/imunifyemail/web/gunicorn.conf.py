# gunicorn settings of imunifyemail-web (``imunifyemail.web.serving`` explains the choices).
import os
import sys

from imunifyemail import sdnotify
from imunifyemail.web import serving

try:
    _worker = serving.worker_account()
    bind = serving.binds()
except serving.ServingError as exc:   # refuse to start, saying why
    sys.exit(f"imunifyemail-web: {exc}")

wsgi_app = "imunifyemail.web.wsgi:app"
proc_name = "imunifyemail-web"
worker_class = "sync"
workers = int(os.environ.get("IMUNIFYEMAIL_WEB_WORKERS", "2"))
timeout = 180            # a release waits for the mail server
graceful_timeout = 30
umask = 0o077            # sockets start private; when_ready opens user.sock to every user
if _worker is not None:   # started as root: workers drop to the daemon's user
    user = _worker.pw_uid
    group = _worker.pw_gid
accesslog = None
errorlog = "-"
loglevel = "info"
forwarded_allow_ips = ""  # nothing in front but our own CGIs on unix sockets


_systemd = None   # systemd's notification socket (Type=notify), kept for when_ready


def on_starting(server):
    global _systemd
    _systemd = sdnotify.take_address()   # gunicorn's own READY comes before when_ready's modes
    try:
        serving.prepare(_worker)
    except serving.ServingError as exc:   # before any socket or worker: say why and stop
        sys.exit(f"imunifyemail-web: {exc}")


def when_ready(server):
    serving.restrict_sockets()
    sdnotify.ready(_systemd)   # the sockets say who may connect: systemctl start may return


def post_fork(server, worker):
    serving.keep_groups(_worker)   # still root here; gunicorn drops uid/gid right after (not groups)
