"""Decisions without I/O: attribution, whitelist, verdict, executable detection.

Nothing in this package opens a file, a socket or a process: it takes bytes
and plain values and returns plain values. The daemon, the CLIs and the web
app are the adapters that feed it.
"""
