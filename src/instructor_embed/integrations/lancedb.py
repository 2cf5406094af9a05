"""LanceDB: an INSTRUCTOR embedding function in LanceDB's registry (extra ``lancedb``).

LanceDB's own ``"instructor"`` function needs the abandoned InstructorEmbedding package. This one is registered
as ``"instructor-embed"`` with the same fields (``name``, ``batch_size``, ``device``, ``show_progress_bar``,
``normalize_embeddings``, ``quantize``, ``source_instruction``, ``query_instruction``), plus ``dtype``,
``backend`` and a remote mode (``base_url``)::

    import instructor_embed.integrations.lancedb  # registers "instructor-embed"
    from lancedb.embeddings import get_registry
    from lancedb.pydantic import LanceModel, Vector

    instructor = get_registry().get("instructor-embed").create(name="hkunlp/instructor-large")

    class Document(LanceModel):
        text: str = instructor.SourceField()
        vector: Vector(instructor.ndims()) = instructor.VectorField()

    table = lancedb.connect("./db").create_table("docs", schema=Document)
    table.add([{"text": "..."}])                       # embedded with source_instruction
    table.search("a question").limit(5).to_list()       # embedded with query_instruction

``quantize=True`` (LanceDB's spelling) means dynamic int8, as ``quantize="int8"`` does everywhere else.
"""

from __future__ import annotations

import os
from functools import cached_property

import numpy as np
from lancedb.embeddings import TextEmbeddingFunction, register

from ..spec import as_spec
from ._backend import Backend


@register("instructor-embed")
class InstructorEmbeddingFunction(TextEmbeddingFunction):
    """Source texts and queries embedded with their own instructions."""

    name: str = "hkunlp/instructor-base"
    batch_size: int = 32
    device: str = "cpu"
    show_progress_bar: bool = True
    normalize_embeddings: bool = True
    quantize: bool | str = False
    dtype: str | None = None
    backend: str = "torch"
    source_instruction: str = "represent the document for retrieval"
    query_instruction: str = "represent the document for retrieving the most similar documents"
    base_url: str | None = None
    api_key_env_var: str = "INSTRUCTOR_EMBED_API_KEY"
    max_retries: int = 0  # LanceDB retries failed calls; a local model's errors (bad input) do not go away

    @cached_property
    def _backend(self) -> Backend:
        quantize = "int8" if self.quantize is True else (self.quantize or None)
        spec = as_spec(self.name, device=self.device, dtype=self.dtype, backend=self.backend, quantize=quantize)
        return Backend(spec, base_url=self.base_url, api_key=os.environ.get(self.api_key_env_var), extra="lancedb")

    def ndims(self) -> int:
        if self._backend.remote is None:
            return self._backend.model.get_sentence_embedding_dimension()
        return len(self.compute_source_embeddings(["dimension probe"])[0])

    def compute_query_embeddings(self, query: str, *args, **kwargs) -> list[np.ndarray]:
        return self._embed([query], self.query_instruction)

    def compute_source_embeddings(self, texts, *args, **kwargs) -> list[np.ndarray]:
        return self._embed(list(self.sanitize_input(texts)), self.source_instruction)

    def generate_embeddings(self, texts) -> list[np.ndarray]:
        """Items as ``encode`` takes them (strings or ``[instruction, text]`` pairs), as LanceDB's class has it."""
        return list(self._backend.model.encode(list(texts), **self._options))

    @property
    def _options(self) -> dict:
        return {
            "batch_size": self.batch_size,
            "show_progress_bar": self.show_progress_bar,
            "normalize_embeddings": self.normalize_embeddings,
        }

    def _embed(self, texts: list[str], instruction: str) -> list[np.ndarray]:
        return list(self._backend.embed(texts, instruction, **self._options))
