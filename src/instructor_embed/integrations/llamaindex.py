"""LlamaIndex: INSTRUCTOR embeddings as a ``llama_index.core`` ``BaseEmbedding`` (extra ``llamaindex``).

A drop-in for ``llama-index-embeddings-instructor`` (which pins sentence-transformers < 3): the same class name,
fields and defaults (``hkunlp/instructor-base``, the retrieval instruction pair when none is given)::

    from instructor_embed.integrations.llamaindex import InstructorEmbedding
    Settings.embed_model = InstructorEmbedding(model_name="hkunlp/instructor-base")

With ``base_url`` it calls a running ``instructor-embed serve`` instead of loading the model. Implements the
methods LlamaIndex documents for custom embeddings (``_get_query_embedding`` and friends).
"""

from __future__ import annotations

import asyncio
from typing import Any

from llama_index.core.base.embeddings.base import DEFAULT_EMBED_BATCH_SIZE, BaseEmbedding
from pydantic import Field, PrivateAttr

from ..instructions import RETRIEVAL
from ._remote import Remote


class InstructorEmbedding(BaseEmbedding):
    """Queries and texts (documents, nodes) embedded with their own instructions."""

    query_instruction: str | None = Field(None, description="default: the authors' retrieval query instruction")
    text_instruction: str | None = Field(None, description="default: the authors' retrieval document instruction")
    cache_folder: str | None = Field(None, description="where Hub downloads are cached")
    device: str | None = Field(None, description="cpu, cuda, ... (default: CUDA when available)")
    base_url: str | None = Field(None, description="remote mode: a running instructor-embed serve")
    api_key: str | None = Field(None, description="remote mode: the server's API key")
    timeout: float = Field(60.0, description="remote mode: seconds per request")

    _model: Any = PrivateAttr(default=None)

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
        if self.base_url is None:
            from ..model import INSTRUCTOR

            self._model = INSTRUCTOR(model_name, device=device, cache_folder=cache_folder)

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
        if self.base_url is not None:
            return self._remote().embed(texts, instruction)
        return self._model.encode([[instruction, text] for text in texts], batch_size=self.embed_batch_size).tolist()

    def _remote(self) -> Remote:
        return Remote(self.base_url, self.model_name, self.api_key, self.timeout, "llamaindex")

    async def _aembed(self, texts: list[str], instruction: str) -> list[list[float]]:
        if self.base_url is not None:
            return await self._remote().aembed(texts, instruction)
        return await asyncio.to_thread(self._embed, texts, instruction)
