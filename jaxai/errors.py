"""The errors a user fixes by changing a command, a config or a file: the CLI prints them in one line."""

from jaxai.cli import UsageError
from jaxai.config import ConfigError
from jaxai.data.errors import DatasetError
from jaxai.runtime import RuntimeSettingError
from jaxai.sharding import MeshError
from jaxai.train.loop import NonFiniteLossError
from jaxai.train.workdir import WorkdirError

USER_ERRORS = (UsageError, ConfigError, DatasetError, MeshError, NonFiniteLossError, WorkdirError, RuntimeSettingError, FileNotFoundError)
