"""Chroma: INSTRUCTOR embeddings as a Chroma ``EmbeddingFunction`` (extra ``chroma``).

The signature of Chroma's own ``InstructorEmbeddingFunction`` (which needs the abandoned InstructorEmbedding
package)::

    from instructor_embed.integrations.chroma import InstructorEmbeddingFunction
    collection = client.create_collection("docs", embedding_function=InstructorEmbeddingFunction(
        model_name="hkunlp/instructor-base", instruction="Represent the document for retrieval: "))

It is registered with Chroma under the name ``instructor_embed``, and its config (model, device, instruction,
dtype, backend, quantize, remote server) round-trips, so a persisted collection reopens with the same function.
With ``base_url`` it calls a running ``instructor-embed serve`` (API key from ``api_key_env_var``).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings
from chromadb.utils.embedding_functions import register_embedding_function

from ..errors import InputTypeError
from ..spec import as_spec
from ._backend import Backend


@register_embedding_function
class InstructorEmbeddingFunction(EmbeddingFunction[Documents]):
    """Every text embedded with ``instruction`` (None: plain text, as Chroma's former class)."""

    def __init__(
        self,
        model_name: str = "hkunlp/instructor-base",
        device: str = "cpu",
        instruction: str | None = None,
        *,
        dtype: str | None = None,
        backend: str = "torch",
        quantize: str | None = None,
        base_url: str | None = None,
        api_key_env_var: str = "INSTRUCTOR_EMBED_API_KEY",
    ):
        self.model_name, self.device, self.instruction = model_name, device, instruction
        self.dtype, self.backend, self.quantize = dtype, backend, quantize
        self.base_url, self.api_key_env_var = base_url, api_key_env_var
        spec = as_spec(model_name, device=device, dtype=dtype, backend=backend, quantize=quantize)
        self._backend = Backend(spec, base_url=base_url, api_key=os.environ.get(api_key_env_var), extra="chroma")
        self._backend.warm_up()

    def __call__(self, input: Documents) -> Embeddings:
        for index, text in enumerate(input):
            if not isinstance(text, str):
                raise InputTypeError(f"input {index}: INSTRUCTOR embeds text, not {type(text).__name__}", index=index)
        return [np.asarray(vector, dtype=np.float32) for vector in self._backend.embed(list(input), self.instruction)]

    @staticmethod
    def name() -> str:
        return "instructor_embed"

    def default_space(self) -> str:
        return "cosine"

    def supported_spaces(self) -> list[str]:
        return ["cosine", "l2", "ip"]

    def get_config(self) -> dict[str, Any]:
        names = ("model_name", "device", "instruction", "dtype", "backend", "quantize", "base_url", "api_key_env_var")
        return {name: getattr(self, name) for name in names}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> InstructorEmbeddingFunction:
        return InstructorEmbeddingFunction(**config)

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
