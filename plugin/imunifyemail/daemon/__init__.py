"""The filter daemon ``imunifyemaild``: LMTP intake, scan, verdict, store or re-inject."""
