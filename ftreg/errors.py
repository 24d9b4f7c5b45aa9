"""Errors a user can fix. The CLI prints them as one line and exits with code 2.

Anything else that escapes is a bug and keeps its traceback.
"""


class FtregError(Exception):
    """Base class of every user-facing ftreg error."""


class InvalidName(FtregError, ValueError):
    """A model name or alias breaks the naming rules."""


class UnknownReference(FtregError, LookupError):
    """A reference names no version in the registry."""


class RegistryConflict(FtregError):
    """The registry refuses an operation that would lose or orphan something."""


class RegistryError(FtregError):
    """The registry's directory or index cannot be used: not ftreg's, corrupt, or not writable."""


class DatasetError(FtregError, ValueError):
    """A dataset file cannot be trained on; the message names file and line."""


class BaseMismatch(FtregError):
    """An adapter was trained on a different base than the one about to be loaded."""


class ArtifactError(FtregError):
    """A registry entry's files are missing or not what its manifest records."""


class ConfigError(FtregError, ValueError):
    """A training or generation setting is out of range; the message names the field."""


class TrainingDiverged(FtregError):
    """Training produced a non-finite loss or metric; nothing is published."""


class UnknownPlugin(FtregError, LookupError):
    """No loaded plugin provides the requested dataset format or training strategy."""


class PluginWarning(UserWarning):
    """A plugin's event hook raised; what triggered the event went ahead. The message names the plugin."""
