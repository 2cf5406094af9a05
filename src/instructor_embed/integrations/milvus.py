"""Milvus: a drop-in for ``pymilvus.model.dense.InstructorEmbeddingFunction`` (extra ``milvus``).

pymilvus's own class embeds with the abandoned InstructorEmbedding package; this one takes the same arguments
and has the same methods, so old code changes only its import::

    from instructor_embed.integrations.milvus import InstructorEmbeddingFunction
    embed = InstructorEmbeddingFunction(model_name="hkunlp/instructor-xl")
    client.insert("docs", [{"id": i, "vector": v, "text": t}
                           for i, (t, v) in enumerate(zip(docs, embed.encode_documents(docs)))])
    client.search("docs", data=embed.encode_queries(["a question"]), limit=5)

plus this library's ``dtype``, ``backend``, ``quantize`` and a remote mode (``base_url``: a running
``instructor-embed serve``). Unlike pymilvus's class, a single query or document embedded alone also gets its
instruction as INSTRUCTOR pools it (pymilvus's prepends it to the text, so the instruction is pooled too).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ..spec import as_spec
from ._backend import Backend


class InstructorEmbeddingFunction:
    """Queries and documents embedded with their own instructions, as pymilvus's class of the same name."""

    def __init__(
        self,
        model_name: str = "hkunlp/instructor-xl",
        batch_size: int = 32,
        query_instruction: str = "Represent the question for retrieval:",
        doc_instruction: str = "Represent the document for retrieval:",
        device: str = "cpu",
        normalize_embeddings: bool = True,
        *,
        dtype: str | None = None,
        backend: str = "torch",
        quantize: str | None = None,
        cache_folder: str | None = None,
        base_url: str | None = None,
        api_key_env_var: str = "INSTRUCTOR_EMBED_API_KEY",
        **kwargs: Any,
    ):
        self.model_name, self.batch_size = model_name, batch_size
        self.query_instruction, self.doc_instruction = query_instruction, doc_instruction
        self.normalize_embeddings = normalize_embeddings
        spec = as_spec(
            model_name,
            device=device,
            dtype=dtype,
            backend=backend,
            quantize=quantize,
            cache_folder=cache_folder,
            **kwargs,
        )
        self._backend = Backend(spec, base_url=base_url, api_key=os.environ.get(api_key_env_var), extra="milvus")
        self._backend.warm_up()
        self._dim: int | None = None

    def __call__(self, texts: list[str]) -> list[np.ndarray]:
        return self.encode_documents(texts)

    def encode_queries(self, queries: list[str]) -> list[np.ndarray]:
        return self._encode(queries, self.query_instruction)

    def encode_documents(self, documents: list[str]) -> list[np.ndarray]:
        return self._encode(documents, self.doc_instruction)

    @property
    def dim(self) -> int:
        """The vectors' size (a Milvus collection's ``dimension``)."""
        if self._dim is None:
            if self._backend.remote is None:
                self._dim = self._backend.model.get_sentence_embedding_dimension()
            else:
                self._dim = len(self.encode_documents(["dimension probe"])[0])
        return self._dim

    def _encode(self, texts: list[str], instruction: str) -> list[np.ndarray]:
        vectors = self._backend.embed(
            list(texts),
            instruction,
            batch_size=self.batch_size,
            normalize_embeddings=self.normalize_embeddings,
            show_progress_bar=False,
        )
        return list(vectors)
