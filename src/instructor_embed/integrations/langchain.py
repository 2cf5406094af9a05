"""LangChain: INSTRUCTOR embeddings as a ``langchain_core`` ``Embeddings`` (extra ``langchain``).

A drop-in for langchain-community's ``HuggingFaceInstructEmbeddings`` (which needs the abandoned
InstructorEmbedding package): the same fields and defaults, so old code changes only its import::

    from instructor_embed.integrations.langchain import HuggingFaceInstructEmbeddings
    embeddings = HuggingFaceInstructEmbeddings(model_name="hkunlp/instructor-large")

plus this library's speed options (``dtype``, ``backend``, ``quantize``) and a remote mode: with ``base_url`` it
calls a running ``instructor-embed serve`` instead of loading the model.
"""

from __future__ import annotations

from typing import Any

from langchain_core.embeddings import Embeddings
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from ..instructions import RETRIEVAL
from ..spec import as_spec
from ._backend import Backend


class InstructorEmbeddings(BaseModel, Embeddings):
    """Documents and queries embedded with their own instructions (the authors' retrieval pair by default)."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model_name: str = "hkunlp/instructor-large"
    """Hub id or local directory (remote mode: the served model's name)."""
    cache_folder: str | None = None
    model_kwargs: dict[str, Any] = Field(default_factory=dict)
    """Model options (:class:`~instructor_embed.spec.ModelSpec`'s), e.g. ``{"device": "cuda"}``."""
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

    _backend: Backend = PrivateAttr()

    def model_post_init(self, context: Any) -> None:
        options = {"dtype": self.dtype, "backend": self.backend, "quantize": self.quantize, **self.model_kwargs}
        spec = as_spec(self.model_name, cache_folder=self.cache_folder, **options)
        self._backend = Backend(
            spec, base_url=self.base_url, api_key=self.api_key, timeout=self.timeout, extra="langchain"
        )
        self._backend.warm_up()  # as the class it replaces, the model loads with the embeddings object

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self._embed(list(texts), self.embed_instruction)

    def embed_query(self, text: str) -> list[float]:
        return self._embed([text], self.query_instruction)[0]

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        return await self._aembed(list(texts), self.embed_instruction)

    async def aembed_query(self, text: str) -> list[float]:
        return (await self._aembed([text], self.query_instruction))[0]

    def _embed(self, texts: list[str], instruction: str) -> list[list[float]]:
        options = {"show_progress_bar": self.show_progress, **self.encode_kwargs}
        return self._backend.embed(list(texts), instruction, **options).tolist()

    async def _aembed(self, texts: list[str], instruction: str) -> list[list[float]]:
        options = {"show_progress_bar": self.show_progress, **self.encode_kwargs}
        return (await self._backend.aembed(list(texts), instruction, **options)).tolist()


HuggingFaceInstructEmbeddings = InstructorEmbeddings  # the old class's name, for a one-line migration
