"""Two kinds of failure: the environment's (a clear message the user can act on) and ours (a bug).

Anything that is not a :class:`CadreError` is a bug: the CLI and the UI show a traceback and write it
to the crash log. :class:`Cancelled` is a normal outcome and shows nothing.
"""

from __future__ import annotations


class CadreError(Exception):
    """A problem the user can fix: missing model, corrupt file, disk full, model too big."""

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n{self.hint}" if self.hint else self.message


class ModelNotInstalledError(CadreError):
    """The specialist's model file is not on disk yet."""


class ModelLoadError(CadreError):
    """llama.cpp could not load the model file."""


class PromptTooLongError(CadreError):
    """The newest message alone does not fit the model's context window."""


class ChatTemplateError(CadreError):
    """A model's chat template tried to leave its sandbox, ran too long, or failed to render."""


class EngineCrashedError(CadreError):
    """The engine worker process died (for example inside llama.cpp); the app keeps running."""


class StorageError(CadreError):
    """The database cannot be opened or is from a newer Cadre."""


class Cancelled(Exception):
    """The user cancelled the work. Not an error: callers stop quietly."""


class DownloadError(CadreError):
    """A download could not finish: the hub is unreachable, the file is missing, access is denied."""


class ChecksumMismatchError(DownloadError):
    """The downloaded bytes are not the ones the hub published; nothing was installed."""


class DiskSpaceError(CadreError):
    """Not enough free disk space for a download."""
