"""Errors that carry one clear, user-facing message.

Every error raised for bad input names the config key or the file at fault and says what to do.
Scripts let them propagate; Snakemake prints the message and the log.
"""


class LayerLensError(Exception):
    """Base class: the message is meant for the user, as is."""


class ConfigError(LayerLensError):
    """A config key is wrong. The message starts with the key."""

    def __init__(self, key: str, message: str):
        self.key = key
        super().__init__(f"config key '{key}': {message}")


class InputError(LayerLensError):
    """A file or folder given to the pipeline is wrong (model, data, layer map)."""

    def __init__(self, path, message: str):
        self.path = str(path)
        super().__init__(f"{path}: {message}")


class NetworkError(LayerLensError):
    """The Hub cannot be reached."""
