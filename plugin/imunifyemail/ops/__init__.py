"""The operations the product offers, one module per concept; ``ie-cli``, the pages, the hooks and
the daemon's control socket call these and nothing below them.

Each operation takes the :class:`~.caller.Caller` (the administrator or a hosted user, and where the
request came from) and enforces what that caller may see and do; it validates every value before it
changes anything, and every refusal is an :class:`imunifyemail.errors.ActionError` with one line for
the person who asked. The rules themselves live in :mod:`imunifyemail.core`, the data in
:mod:`imunifyemail.store`; the result shapes in :mod:`imunifyemail.shapes`.
"""
