"""One exception family for everything a user can get wrong.

The CLI turns any ``HmuError`` into one line on stderr and exit code 2; the Blender add-on turns
it into an operator report. Anything else that escapes is a bug and keeps its traceback.
Messages say what was wrong, where, and what to do about it.
"""


class HmuError(Exception):
    """Base class of every error hmu raises on bad input or a missing user-provided file."""


class ConfigError(HmuError):
    """A configuration value, option or opt.txt entry is missing or invalid."""


class DataError(HmuError):
    """A dataset file is missing, malformed, or has the wrong shape."""


class MotionError(HmuError):
    """A motion array has the wrong shape, dtype or non-finite values."""


class BundleError(HmuError):
    """An exported bundle is missing a file, fails a hash check, or has the wrong format."""
