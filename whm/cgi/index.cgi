#!/opt/imunifyemail/bin/python3 -I
"""WHM → Plugins → Imunify Email. WHM runs this as root once it has authenticated ``REMOTE_USER``;
it hands the request to the web app's root-only admin socket (imunifyemail.cgiproxy)."""
import sys

from imunifyemail import cgiproxy

sys.exit(cgiproxy.main("/var/run/imunifyemail/admin.sock", home="/admin/quarantine",
                       default_script="/cgi/imunifyemail/index.cgi", pass_user=True))
