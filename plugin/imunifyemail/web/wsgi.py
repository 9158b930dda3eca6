"""The WSGI application gunicorn serves (``wsgi_app`` in ``gunicorn.conf.py``)."""
from . import create_app

app = create_app()
