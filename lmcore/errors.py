"""Errors that end a run with a message a user can act on."""


class LmbookError(RuntimeError):
    """Base class of lmbook's own errors."""


class MissingDataError(LmbookError, FileNotFoundError):
    """A data set or weight file is absent; the message names the command that fetches it."""


class CorruptDataError(LmbookError, ValueError):
    """A file exists but cannot be read or has the wrong content; the message names the file."""


class TrainingDiverged(LmbookError):
    """The loss became NaN or infinite; the last good checkpoint is kept on disk."""
