"""Every error ragkit raises on purpose: one class per cause, one line of text naming the thing and the cause.

The CLI prints ``str(error)`` on one line and exits non-zero; nothing here carries a traceback for the user.
"""


class RagkitError(Exception):
    """Base class: an expected failure with a message meant for the user."""


class ConfigError(RagkitError):
    """ragkit.toml, a --set override or a plugin parameter is invalid."""


class PluginError(RagkitError):
    """An unknown plugin name, or a plugin that failed to import or construct."""


class LoadError(RagkitError):
    """A source file could not be turned into documents (unreadable, binary, empty, bad encoding, too large...)."""


class IndexDirError(RagkitError):
    """Base for problems with an index directory."""


class IndexLockedError(IndexDirError):
    """Another process is writing to the index."""


class IndexCorruptError(IndexDirError):
    """The index directory is damaged, foreign, or of an unknown format."""


class IndexConfigMismatch(IndexDirError):
    """The requested chunking/embedding/index settings differ from the ones the index was built with."""


def first_line(exc: BaseException) -> str:
    """The first line of a third-party exception's message (its type name when the message is empty): what a
    one-line error quotes of a library's multi-line failure."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
