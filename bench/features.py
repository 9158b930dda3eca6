"""The mail-path benches run with every server feature switched on: their figures are those of a
server running them all. The metrics file is rewritten every second (30 times the default): the
worst case of what it costs."""

ALL_ON = ("settings", "--metrics", "on", "--auto-release", "on", "--containment-threshold", "50",
          "--notify-admin", "on")
CONFIG = {"metrics": {"interval": 1}}
SUMMARY = "features on: metrics (file every 1 s), auto-release, containment at 50, notify-admin"
