"""The errors a user fixes by changing a command, a config or a file; the CLI prints them in one line.

A leaf module: it imports nothing of jaxai, so every layer can raise these without import cycles.
"""


class UsageError(ValueError):
    """The command line itself is wrong."""


class ConfigError(ValueError):
    """A config file or an override the user must fix."""


class DatasetError(RuntimeError):
    """A dataset cannot be found, prepared or read; the message says how to fix it."""


class MeshError(ValueError):
    """The requested device mesh does not fit the devices or the batch."""


class RuntimeSettingError(ValueError):
    """An environment or runtime setting (allocator, XLA flags, distributed start-up) is wrong."""


class WorkdirError(RuntimeError):
    """The workdir holds something this run must not touch (another run, a broken record)."""


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN or infinite metric."""


USER_ERRORS = (
    UsageError, ConfigError, DatasetError, MeshError, NonFiniteLossError, WorkdirError, RuntimeSettingError,
    FileNotFoundError,
)
