"""imunifyemail: outbound-mail guard for cPanel & WHM servers."""

__version__ = "0.1.0"
