"""Errors that end a run with a message a user can act on."""


class LmbookError(RuntimeError):
    """Base class of lmbook's own errors."""


class MissingDataError(LmbookError, FileNotFoundError):
    """A data set or weight file is absent; the message names the command that fetches it."""


class CorruptDataError(LmbookError, ValueError):
    """A file exists but cannot be read or has the wrong content; the message names the file."""


class TrainingDiverged(LmbookError):
    """The loss became NaN or infinite; the last good checkpoint is kept on disk."""


class ConfigError(LmbookError, ValueError):
    """A setting has a wrong type or value, or is unknown; the message names the key as the user
    writes it (``train.steps``), the bad value and what is allowed, in one line."""


class CorruptCheckpointError(LmbookError):
    """A checkpoint cannot be read (truncated or not a checkpoint); the message names the file and
    what to do."""


class CorruptRecordError(LmbookError, ValueError):
    """A run record (``record.json``) cannot be read or lacks required keys; the message names the
    file and what to do."""
