"""``make bench``: the performance figures the issues ask for, measured in one run."""
