"""Chroma: INSTRUCTOR embeddings as a Chroma ``EmbeddingFunction`` (extra ``chroma``).

The signature of Chroma's own ``InstructorEmbeddingFunction`` (which needs the abandoned InstructorEmbedding
package)::

    from instructor_embed.integrations.chroma import InstructorEmbeddingFunction
    collection = client.create_collection("docs", embedding_function=InstructorEmbeddingFunction(
        model_name="hkunlp/instructor-base", instruction="Represent the document for retrieval: "))

It is registered with Chroma under the name ``instructor_embed``, and its config (model, device, instruction)
round-trips, so a persisted collection reopens with the same function.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings
from chromadb.utils.embedding_functions import register_embedding_function

from ..errors import InputTypeError


@register_embedding_function
class InstructorEmbeddingFunction(EmbeddingFunction[Documents]):
    """Every text embedded with ``instruction`` (None: plain text, as Chroma's former class)."""

    def __init__(self, model_name: str = "hkunlp/instructor-base", device: str = "cpu", instruction: str | None = None):
        from ..model import INSTRUCTOR

        self.model_name, self.device, self.instruction = model_name, device, instruction
        self._model = INSTRUCTOR(model_name, device=device)

    def __call__(self, input: Documents) -> Embeddings:
        for index, text in enumerate(input):
            if not isinstance(text, str):
                raise InputTypeError(f"input {index}: INSTRUCTOR embeds text, not {type(text).__name__}", index=index)
        items = list(input) if self.instruction is None else [[self.instruction, text] for text in input]
        return [np.asarray(vector, dtype=np.float32) for vector in self._model.encode(items)]

    @staticmethod
    def name() -> str:
        return "instructor_embed"

    def default_space(self) -> str:
        return "cosine"

    def supported_spaces(self) -> list[str]:
        return ["cosine", "l2", "ip"]

    def get_config(self) -> dict[str, Any]:
        return {"model_name": self.model_name, "device": self.device, "instruction": self.instruction}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> InstructorEmbeddingFunction:
        return InstructorEmbeddingFunction(config["model_name"], config.get("device", "cpu"), config.get("instruction"))

    def validate_config_update(self, old_config: dict[str, Any], new_config: dict[str, Any]) -> None:
        """A collection's vectors were made with one instruction: embedding new texts with another would mix spaces."""
        if old_config.get("instruction") != new_config.get("instruction"):
            raise ValueError(
                "the instruction of a collection's embedding function cannot change; create a new collection"
            )

    @staticmethod
    def validate_config(config: dict[str, Any]) -> None:
        if not isinstance(config.get("model_name"), str):
            raise ValueError("config needs model_name (a string)")
