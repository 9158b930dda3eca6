#!/opt/imunifyemail/bin/python3 -I
"""cPanel → Security → Imunify Email. cPanel runs this as the hosted user; it hands the request to the
web app's user socket, where the app knows the user by the socket's peer credentials
(imunifyemail.cgiproxy)."""
import sys

from imunifyemail import cgiproxy

sys.exit(cgiproxy.main("/var/run/imunifyemail/user.sock", home="/user/quarantine",
                       default_script="/frontend/jupiter/imunifyemail/index.live.cgi", pass_user=False))
