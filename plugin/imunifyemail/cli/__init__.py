"""The root command-line tools.

``ie-cli`` (:mod:`.ie_cli`) is a thin click adapter over the operations of
:mod:`imunifyemail.ops` (shared with the web app, the hooks and the daemon);
this package only parses flags, renders output in the seed document's text
layouts (:mod:`.output`) and JSON shapes (:mod:`imunifyemail.shapes`), formats ``--help`` the way the original
cobra-based tool does (:mod:`.cobra`) and turns every expected failure into
one ``Error: ...`` line on stderr with exit status 1.
"""
