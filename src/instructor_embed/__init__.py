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
from .quantization import quantize_embeddings

__all__ = [
    "INSTRUCTOR",
    "CheckpointError",
    "InputError",
    "InputTypeError",
    "InstructorEmbedError",
    "ModelLoadError",
    "ModelNotFoundError",
    "instruction",
    "quantize_embeddings",
]
