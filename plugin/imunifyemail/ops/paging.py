"""How much one request may list: a page of at most ``MAX_PAGE`` rows — emails, accounts, the Activity
Monitor's accounts, audit entries — and as many email ids acted on at once (what a page can select)."""
MAX_PAGE = 1000
