"""The root command-line tools.

``ie-cli`` (:mod:`.ie_cli`) is a thin click adapter: the rules live in
:mod:`imunifyemail.actions` (shared with the web app) and the stores; this
package only parses flags, renders output (:mod:`.output`) in the seed
document's text and JSON shapes, formats ``--help`` the way the original
cobra-based tool does (:mod:`.cobra`) and turns every expected failure into
one ``Error: ...`` line on stderr with exit status 1.
"""
