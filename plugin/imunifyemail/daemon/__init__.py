"""The filter daemon ``imunifyemaild``: answers Exim's router with each message's verdict (read from the spool, scanned, held or passed), and the web app's releases."""
