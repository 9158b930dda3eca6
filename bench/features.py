"""The server features of issue 10, all switched on or all off, for the mail-path benches.

"On" is what a server running them all does on the mail path: metrics counted and the file rewritten
every second (30 times the default: the worst case of what it costs), automatic release scanning for
rate-limited mail, containment counted on every held spam message, notifications recorded. The
containment threshold is set above the corpora's spam per account, so that no account gets blocked
half-way and the mix of work stays the one measured with the features off."""

ALL_ON = ("settings", "--metrics", "on", "--auto-release", "on", "--containment-threshold", "100000",
          "--notify-admin", "on", "--notify-owner", "on")
ALL_OFF = ("settings", "--metrics", "off", "--auto-release", "off", "--containment-threshold", "0",
           "--notify-admin", "off", "--notify-owner", "off")
CONFIG = {"metrics": {"interval": 1}}
SUMMARY = ("features on: metrics (file every 1 s), automatic release, containment armed, notifications")
# What a server running them all at their defaults does (the Exim bench: the mail path as deployed).
DEFAULT_CONFIG: dict = {}
DEFAULT_SUMMARY = ("features on at their defaults: metrics (file every 30 s), automatic release, containment "
                   "armed, notifications")
