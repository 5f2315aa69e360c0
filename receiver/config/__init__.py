"""The receiver's configuration: typed sections (model), loading (load), routes resolved for the engine (routes)."""

from receiver.config.errors import ConfigError, ConfigProblem
from receiver.config.load import default_config, dump_redacted, load_config
from receiver.config.model import Config
from receiver.config.routes import LevelPolicy, ResolvedRoute

__all__ = ["Config", "ConfigError", "ConfigProblem", "LevelPolicy", "ResolvedRoute", "default_config",
           "dump_redacted", "load_config"]
