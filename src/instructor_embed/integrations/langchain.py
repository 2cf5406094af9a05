"""LangChain: INSTRUCTOR embeddings as a ``langchain_core`` ``Embeddings`` (extra ``langchain``).

A drop-in for langchain-community's ``HuggingFaceInstructEmbeddings`` (which needs the abandoned
InstructorEmbedding package): the same fields and defaults, so old code changes only its import::

    from instructor_embed.integrations.langchain import HuggingFaceInstructEmbeddings
    embeddings = HuggingFaceInstructEmbeddings(model_name="hkunlp/instructor-large")

plus this library's speed options (``dtype``, ``backend``, ``quantize``) and a remote mode: with ``base_url`` it
calls a running ``instructor-embed serve`` instead of loading the model.
"""

from __future__ import annotations

import asyncio
from typing import Any

from langchain_core.embeddings import Embeddings
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from ..instructions import RETRIEVAL
from ._remote import Remote


class InstructorEmbeddings(BaseModel, Embeddings):
    """Documents and queries embedded with their own instructions (the authors' retrieval pair by default)."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model_name: str = "hkunlp/instructor-large"
    """Hub id or local directory (remote mode: the served model's name)."""
    cache_folder: str | None = None
    model_kwargs: dict[str, Any] = Field(default_factory=dict)
    """Passed to ``INSTRUCTOR(...)``, e.g. ``{"device": "cuda"}``."""
    encode_kwargs: dict[str, Any] = Field(default_factory=dict)
    """Passed to ``encode``, e.g. ``{"batch_size": 64, "normalize_embeddings": True}``."""
    embed_instruction: str = RETRIEVAL.corpus
    query_instruction: str = RETRIEVAL.query
    show_progress: bool = False
    dtype: str | None = None
    backend: str = "torch"
    quantize: str | None = None
    base_url: str | None = None
    """Remote mode: a running ``instructor-embed serve``, e.g. ``http://localhost:8000``."""
    api_key: str | None = None
    timeout: float = 60.0

    _model: Any = PrivateAttr(default=None)

    def model_post_init(self, context: Any) -> None:
        if self.base_url is None:
            from ..model import INSTRUCTOR

            options = {"dtype": self.dtype, "backend": self.backend, "quantize": self.quantize, **self.model_kwargs}
            self._model = INSTRUCTOR(self.model_name, cache_folder=self.cache_folder, **options)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self._embed(list(texts), self.embed_instruction)

    def embed_query(self, text: str) -> list[float]:
        return self._embed([text], self.query_instruction)[0]

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        return await self._aembed(list(texts), self.embed_instruction)

    async def aembed_query(self, text: str) -> list[float]:
        return (await self._aembed([text], self.query_instruction))[0]

    def _embed(self, texts: list[str], instruction: str) -> list[list[float]]:
        if self.base_url is not None:
            return self._remote().embed(texts, instruction)
        if not texts:
            return []
        items = [[instruction, text] for text in texts]
        options = {"show_progress_bar": self.show_progress, **self.encode_kwargs}
        return self._model.encode(items, **options).tolist()

    def _remote(self) -> Remote:
        return Remote(self.base_url, self.model_name, self.api_key, self.timeout, "langchain")

    async def _aembed(self, texts: list[str], instruction: str) -> list[list[float]]:
        if self.base_url is not None:
            return await self._remote().aembed(texts, instruction)
        return await asyncio.to_thread(self._embed, texts, instruction)  # the model runs off the event loop


HuggingFaceInstructEmbeddings = InstructorEmbeddings  # the old class's name, for a one-line migration
