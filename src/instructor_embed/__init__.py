"""instructor-embed: instruction-conditioned text embeddings (INSTRUCTOR), on today's torch and transformers.

``import instructor_embed`` is light: the model classes (and torch) load on first use of ``INSTRUCTOR``.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from .errors import (
    CheckpointError,
    InputError,
    InputTypeError,
    InstructorEmbedError,
    MissingDependencyError,
    ModelLoadError,
    ModelNotFoundError,
    OutputError,
)
from .instructions import RETRIEVAL, InstructionPair, instruction

if TYPE_CHECKING:
    from .model import INSTRUCTOR
    from .quantization import quantization_ranges, quantize_embeddings
    from .spec import ModelSpec
    from .tokenization import Item

try:
    __version__ = version("instructor-embed")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

_LAZY = {
    "INSTRUCTOR": ".model",
    "Item": ".tokenization",
    "ModelSpec": ".spec",
    "quantization_ranges": ".quantization",
    "quantize_embeddings": ".quantization",
}

__all__ = [
    "INSTRUCTOR",
    "CheckpointError",
    "InputError",
    "InputTypeError",
    "InstructorEmbedError",
    "InstructionPair",
    "Item",
    "MissingDependencyError",
    "ModelSpec",
    "ModelLoadError",
    "ModelNotFoundError",
    "OutputError",
    "RETRIEVAL",
    "__version__",
    "instruction",
    "quantization_ranges",
    "quantize_embeddings",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
