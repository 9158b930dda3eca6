"""Where the root commands log what they did: syslog, mail facility — never the terminal.

``ie-cli``, ``ie-config`` and the cPanel hooks say so in one place (the daemon and the web app log to
their own stderr, which systemd keeps)."""
import logging
import logging.handlers
import os

SYSLOG_SOCKET = "/dev/log"   # the host's syslog, not under $IMUNIFYEMAIL_ROOT


def to_syslog(prog: str) -> None:
    """The package's log lines go to syslog as ``prog[pid]: ...`` (nowhere if there is no syslog)."""
    logging.raiseExceptions = False   # a syslog hiccup must not print a traceback
    logger = logging.getLogger("imunifyemail")
    if logger.handlers:
        return
    handler: logging.Handler = logging.NullHandler()
    if os.path.exists(SYSLOG_SOCKET):
        handler = logging.handlers.SysLogHandler(SYSLOG_SOCKET, logging.handlers.SysLogHandler.LOG_MAIL)
        handler.setFormatter(logging.Formatter(f"{prog}[%(process)d]: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
