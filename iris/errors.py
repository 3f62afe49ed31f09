"""The errors a user is meant to read: the CLI prints them as one line (no traceback) and exits 2."""


class ConfigError(ValueError):
    """Bad input (a preset, config key, value, game, path, ...): the message names it and the valid choices."""


class NonFiniteLoss(RuntimeError):
    """A loss became NaN or infinite: the run stops, its last good checkpoint stays."""


class RunStateError(RuntimeError):
    """A run's files are damaged or do not fit together: the message names the file and what to do. Nothing is
    deleted on the way to this error."""


class DiskFull(RuntimeError):
    """A disk has no room for what a run writes, or a campaign's runs will write: the message names the file or
    directory, the space needed and free, and what to do. Whatever was written before stays whole."""
