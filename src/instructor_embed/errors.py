"""The errors this package raises.

Every error a caller can act on derives from :class:`InstructorEmbedError`::

    InstructorEmbedError
    ├── InputError (ValueError)              a bad argument, a bad item passed to ``encode``, a bad input file row
    │   └── InputTypeError (TypeError)       an item or argument of the wrong type
    ├── ModelLoadError (OSError)             a model that cannot be found or read
    │   ├── ModelNotFoundError               no such Hub id or local directory
    │   └── CheckpointError                  a file of the checkpoint is missing, corrupt or inconsistent
    ├── OutputError (OSError)                output cannot be written (a full disk, ...); says what is kept
    └── MissingDependencyError (ImportError) an optional package is not installed; names the extra to install

Input errors subclass the built-in ``ValueError``/``TypeError``, so code written against the original
package's behaviour keeps catching them, and carry where the problem is as attributes (``param``, ``index``,
``path``, ``line``): a server turns them into a 400 naming the field, a bulk job into a line-numbered report.
"""

from __future__ import annotations

import os


class InstructorEmbedError(Exception):
    """Base class of every error raised on purpose by instructor-embed."""


class InputError(InstructorEmbedError, ValueError):
    """An argument or input item has a wrong value.

    Attributes (``None`` where they do not apply):
        param: the argument or field at fault, e.g. ``"batch_size"``, ``"sentences"``, ``"text"``.
        index: the position of the item at fault in the caller's list.
        path: the input file at fault.
        line: the 1-based line (or row) of ``path`` at fault.
    """

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        index: int | None = None,
        path: str | os.PathLike[str] | None = None,
        line: int | None = None,
    ):
        super().__init__(message)
        self.param = param
        self.index = index
        self.path = None if path is None else os.fspath(path)
        self.line = line


class InputTypeError(InputError, TypeError):
    """An argument or input item has a wrong type."""


class ModelLoadError(InstructorEmbedError, OSError):
    """A model cannot be loaded."""


class ModelNotFoundError(ModelLoadError):
    """The model id or path names nothing that can be loaded."""


class CheckpointError(ModelLoadError):
    """A checkpoint file is missing, unreadable or does not match the model."""


class OutputError(InstructorEmbedError, OSError):
    """Output cannot be written (no space left, no permission); the message says what was kept and how to
    continue. ``path``: the file or folder at fault."""

    def __init__(self, message: str, *, path: str | os.PathLike[str] | None = None):
        super().__init__(message)
        self.path = None if path is None else os.fspath(path)


class MissingDependencyError(InstructorEmbedError, ImportError):
    """An optional package is needed and not installed; ``extra`` is the pip extra that installs it."""

    def __init__(self, message: str, *, module: str, extra: str):
        super().__init__(message, name=module)
        self.module = module
        self.extra = extra
