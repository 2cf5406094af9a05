"""The errors this package raises.

Every error a caller can act on derives from :class:`InstructorEmbedError`::

    InstructorEmbedError
    ├── InputError (ValueError)         a bad argument or a bad item passed to ``encode``
    │   └── InputTypeError (TypeError)  an item or argument of the wrong type
    └── ModelLoadError (OSError)        a model that cannot be found or read
        ├── ModelNotFoundError          no such Hub id or local directory
        └── CheckpointError             a file of the checkpoint is missing, corrupt or inconsistent

Input errors subclass the built-in ``ValueError``/``TypeError``, so code written
against the original package's behaviour keeps catching them.
"""

from __future__ import annotations


class InstructorEmbedError(Exception):
    """Base class of every error raised on purpose by instructor-embed."""


class InputError(InstructorEmbedError, ValueError):
    """An argument or input item has a wrong value."""


class InputTypeError(InputError, TypeError):
    """An argument or input item has a wrong type."""


class ModelLoadError(InstructorEmbedError, OSError):
    """A model cannot be loaded."""


class ModelNotFoundError(ModelLoadError):
    """The model id or path names nothing that can be loaded."""


class CheckpointError(ModelLoadError):
    """A checkpoint file is missing, unreadable or does not match the model."""
