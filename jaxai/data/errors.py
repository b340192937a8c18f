"""Errors of the data layer."""


class DatasetError(RuntimeError):
    """A dataset cannot be found, prepared or read; the message says how to fix it."""
