"""LlamaIndex: INSTRUCTOR embeddings as a ``llama_index.core`` ``BaseEmbedding`` (extra ``llamaindex``).

A drop-in for ``llama-index-embeddings-instructor`` (which pins sentence-transformers < 3): the same class name,
fields and defaults (``hkunlp/instructor-base``, the retrieval instruction pair when none is given)::

    from instructor_embed.integrations.llamaindex import InstructorEmbedding
    Settings.embed_model = InstructorEmbedding(model_name="hkunlp/instructor-base")

With ``base_url`` it calls a running ``instructor-embed serve`` instead of loading the model. Implements the
methods LlamaIndex documents for custom embeddings (``_get_query_embedding`` and friends).
"""

from __future__ import annotations

from typing import Any

from llama_index.core.base.embeddings.base import DEFAULT_EMBED_BATCH_SIZE, BaseEmbedding
from pydantic import Field, PrivateAttr

from ..instructions import RETRIEVAL
from ..spec import as_spec
from ._backend import Backend


class InstructorEmbedding(BaseEmbedding):
    """Queries and texts (documents, nodes) embedded with their own instructions."""

    query_instruction: str | None = Field(None, description="default: the authors' retrieval query instruction")
    text_instruction: str | None = Field(None, description="default: the authors' retrieval document instruction")
    cache_folder: str | None = Field(None, description="where Hub downloads are cached")
    device: str | None = Field(None, description="cpu, cuda, ... (default: CUDA when available)")
    dtype: str | None = Field(None, description="float32, bfloat16, float16 or auto (default: float32)")
    backend: str = Field("torch", description="torch or onnx")
    quantize: str | None = Field(None, description="int8 for a dynamic int8 encoder")
    base_url: str | None = Field(None, description="remote mode: a running instructor-embed serve")
    api_key: str | None = Field(None, description="remote mode: the server's API key")
    timeout: float = Field(60.0, description="remote mode: seconds per request")

    _backend: Backend = PrivateAttr()

    def __init__(
        self,
        query_instruction: str | None = None,
        text_instruction: str | None = None,
        model_name: str = "hkunlp/instructor-base",
        embed_batch_size: int = DEFAULT_EMBED_BATCH_SIZE,
        cache_folder: str | None = None,
        device: str | None = None,
        **kwargs: Any,
    ):
        super().__init__(
            query_instruction=query_instruction,
            text_instruction=text_instruction,
            model_name=model_name,
            embed_batch_size=embed_batch_size,
            cache_folder=cache_folder,
            device=device,
            **kwargs,
        )
        spec = as_spec(
            model_name,
            device=device,
            cache_folder=cache_folder,
            dtype=self.dtype,
            backend=self.backend,
            quantize=self.quantize,
        )
        self._backend = Backend(
            spec, base_url=self.base_url, api_key=self.api_key, timeout=self.timeout, extra="llamaindex"
        )
        self._backend.warm_up()

    @classmethod
    def class_name(cls) -> str:
        return "InstructorEmbedding"

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._embed([query], self.query_instruction or RETRIEVAL.query)[0]

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._embed([text], self.text_instruction or RETRIEVAL.corpus)[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self._embed(texts, self.text_instruction or RETRIEVAL.corpus)

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return (await self._aembed([query], self.query_instruction or RETRIEVAL.query))[0]

    async def _aget_text_embedding(self, text: str) -> list[float]:
        return (await self._aembed([text], self.text_instruction or RETRIEVAL.corpus))[0]

    async def _aget_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return await self._aembed(texts, self.text_instruction or RETRIEVAL.corpus)

    def _embed(self, texts: list[str], instruction: str) -> list[list[float]]:
        return self._backend.embed(texts, instruction, batch_size=self.embed_batch_size).tolist()

    async def _aembed(self, texts: list[str], instruction: str) -> list[list[float]]:
        return (await self._backend.aembed(texts, instruction, batch_size=self.embed_batch_size)).tolist()
