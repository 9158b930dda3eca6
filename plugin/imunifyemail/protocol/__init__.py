"""What travels over the daemon's two sockets, said once for both ends.

* :mod:`.scan` — the filter socket: Exim's router asks for one address's verdict
  (``exim_conf/router.conf``, ``${readsocket}`` and ``${extract}``), the daemon answers;
* :mod:`.control` — the control socket: one JSON line each way, a release handed to the daemon
  by the web app (or ``ie-cli``);
* :mod:`.clients` — one exchange over either socket, as the router and the web app make it.

The formats are fixed: Exim's router and daemons already deployed depend on them. :mod:`.scan`
and :mod:`.control` only parse and build (no I/O); the sockets are the daemon's
(:mod:`imunifyemail.daemon.peer_server`) and :mod:`.clients`'.
"""
