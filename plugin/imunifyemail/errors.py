"""The one family of errors a person is shown.

Every refusal or failure of an operation — from the CLIs, the pages, the
hooks — is an :class:`ActionError` whose ``str()`` is one line fit for the
person who asked: the CLIs print it after ``Error:``, the web app maps the
subclass to an HTTP status and shows the line on the page. Anything else
(a bug, an unexpected OS error) is logged and shown as a plain failure,
never as exception text.
"""


class ActionError(Exception):
    """A refused or failed operation; ``str()`` is one line for the user."""

    status = 500          # what the web app answers for it


class InvalidInput(ActionError):
    status = 400


class NotFoundError(ActionError):
    status = 404


class Forbidden(ActionError):
    status = 403


class Conflict(ActionError):
    """Someone else is doing it right now, or the state does not allow it."""
    status = 409


class ReleaseFailed(ActionError):
    status = 502


class Unavailable(ActionError):
    """A part the operation needs (the daemon, the database) cannot be reached."""
    status = 503
