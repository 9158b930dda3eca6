"""The notifications: digests by email through the local MTA and the webhook, sent by the root job
``ie-config notify`` (a systemd timer runs it every minute), never from the mail path. The rules are
in :mod:`imunifyemail.core.notifications` and :mod:`imunifyemail.core.digest`; here is the I/O."""
