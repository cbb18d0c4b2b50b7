"""User-facing errors: raised for bad input, caught by the CLI and printed without a traceback."""


class EmpathyTFError(Exception):
    """Base class for errors whose message is meant for the user, not a traceback."""


class DataError(EmpathyTFError):
    """A dataset file is missing or malformed. The message names the file, line/field, and what was expected."""


class ConfigError(EmpathyTFError):
    """An experiment, dataset, flag or override is unknown or invalid."""


class CacheMismatchError(EmpathyTFError):
    """A cache (tokens, teacher predictions) does not match the data it is asked to serve."""


class TrainingDivergedError(EmpathyTFError):
    """The loss became NaN or infinite."""


class RunInterrupted(KeyboardInterrupt):
    """A requested stop (SIGTERM/SIGINT) was checkpointed; rerunning the same command resumes."""
