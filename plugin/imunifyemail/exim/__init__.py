"""The Exim integration on a cPanel server (used by ``ie-config``).

* :mod:`.localconf` — our sentinel blocks in ``/etc/exim.conf.local`` (pure text);
* :mod:`.snippets` — the routers of ``exim_conf/``, filled in from the config;
* :mod:`.patcher` — write the blocks, run ``buildeximconf`` / ``restartsrv_exim``, roll back;
* :mod:`.rebuild_hook` — the ``postbuildeximconf`` re-apply point, chained to the administrator's;
* :mod:`.queue` — what waits in Exim's queue for the scanner;
* :mod:`.services` — our units through ``systemctl``.

Every path goes through :mod:`imunifyemail.paths` (``$IMUNIFYEMAIL_ROOT``); cPanel's programs are
called at their real paths under that root.
"""
