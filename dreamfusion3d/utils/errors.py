"""User-facing errors: the CLI prints these as one line and exits non-zero (``--debug`` shows
the traceback)."""


class UserError(Exception):
    """A mistake in the user's input (bad file, bad value, missing model): one clear line."""
