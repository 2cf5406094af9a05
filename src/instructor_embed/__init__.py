"""instructor-embed: instruction-conditioned text embeddings (INSTRUCTOR), on today's torch and transformers."""

from .errors import (
    CheckpointError,
    InputError,
    InputTypeError,
    InstructorEmbedError,
    ModelLoadError,
    ModelNotFoundError,
)
from .instructions import instruction
from .model import INSTRUCTOR

__all__ = [
    "INSTRUCTOR",
    "CheckpointError",
    "InputError",
    "InputTypeError",
    "InstructorEmbedError",
    "ModelLoadError",
    "ModelNotFoundError",
    "instruction",
]
