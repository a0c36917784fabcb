"""Errors that cnnlab raises for bad input.

Every message is one line that says what was wrong and how to fix it. The CLI
prints it and exits with code 2 (``--debug`` shows the traceback). Each class
also derives from the built-in exception a Python user would catch.

Example:
    >>> from cnnlab.errors import ConfigError
    >>> try:
    ...     raise ConfigError("epochs must be a positive integer, got -1; pass epochs=10")
    ... except ValueError as e:
    ...     print(e)
    epochs must be a positive integer, got -1; pass epochs=10
"""

from __future__ import annotations


class CnnlabError(Exception):
    """Base class of every error cnnlab raises on purpose."""


class ConfigError(CnnlabError, ValueError):
    """A setting, argument or flag combination that cannot work."""


class DataError(CnnlabError, ValueError):
    """A data file that is missing, truncated, corrupt or mislabelled."""


class DataNotFoundError(CnnlabError, FileNotFoundError):
    """A dataset whose files are nowhere cnnlab looks."""


class CheckpointError(CnnlabError, ValueError):
    """A checkpoint that is unreadable, unsafe, or does not fit the model."""


class TrainingDiverged(CnnlabError, RuntimeError):
    """The loss became NaN or infinite."""
