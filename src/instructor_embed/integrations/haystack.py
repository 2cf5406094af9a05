"""Haystack: INSTRUCTOR text and document embedder components (extra ``haystack``).

The parameters of Haystack's former instructor embedders, serialisable with ``to_dict``/``from_dict`` as
components must be::

    from instructor_embed.integrations.haystack import InstructorDocumentEmbedder, InstructorTextEmbedder
    indexing.add_component("embedder", InstructorDocumentEmbedder(
        model="hkunlp/instructor-base", instruction="Represent the Medical document for retrieval:"))
    querying.add_component("embedder", InstructorTextEmbedder(
        model="hkunlp/instructor-base", instruction="Represent the Medical question for retrieving supporting documents:"))
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from haystack import Document, component, default_from_dict, default_to_dict

from ..errors import InputTypeError


class _Model:
    """The model, loaded by ``warm_up`` (Haystack's convention) or on first use."""

    def __init__(self, model: str, device: str | None):
        self.model, self.device, self.instance = model, device, None

    def get(self):
        if self.instance is None:
            from ..model import INSTRUCTOR

            self.instance = INSTRUCTOR(self.model, device=self.device)
        return self.instance


@component
class InstructorTextEmbedder:
    """Embeds one text (a query) with ``instruction``."""

    def __init__(
        self,
        model: str = "hkunlp/instructor-base",
        device: str | None = None,
        instruction: str = "Represent the sentence",
        normalize_embeddings: bool = False,
        progress_bar: bool = False,
    ):
        self.model, self.device, self.instruction = model, device, instruction
        self.normalize_embeddings, self.progress_bar = normalize_embeddings, progress_bar
        self._model = _Model(model, device)

    def warm_up(self) -> None:
        self._model.get()

    def to_dict(self) -> dict[str, Any]:
        return default_to_dict(
            self,
            model=self.model,
            device=self.device,
            instruction=self.instruction,
            normalize_embeddings=self.normalize_embeddings,
            progress_bar=self.progress_bar,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InstructorTextEmbedder:
        return default_from_dict(cls, data)

    @component.output_types(embedding=list[float])
    def run(self, text: str) -> dict[str, Any]:
        if not isinstance(text, str):
            raise InputTypeError(
                "InstructorTextEmbedder takes one string; use InstructorDocumentEmbedder for documents", param="text"
            )
        vector = self._model.get().encode(
            [[self.instruction, text]],
            normalize_embeddings=self.normalize_embeddings,
            show_progress_bar=self.progress_bar,
        )[0]
        return {"embedding": vector.tolist()}


@component
class InstructorDocumentEmbedder:
    """Embeds documents' content (with chosen meta fields prepended) with ``instruction``; sets ``embedding``."""

    def __init__(
        self,
        model: str = "hkunlp/instructor-base",
        device: str | None = None,
        instruction: str = "Represent the document",
        batch_size: int = 32,
        progress_bar: bool = True,
        normalize_embeddings: bool = False,
        meta_fields_to_embed: list[str] | None = None,
        embedding_separator: str = "\n",
    ):
        self.model, self.device, self.instruction = model, device, instruction
        self.batch_size, self.progress_bar, self.normalize_embeddings = batch_size, progress_bar, normalize_embeddings
        self.meta_fields_to_embed, self.embedding_separator = meta_fields_to_embed or [], embedding_separator
        self._model = _Model(model, device)

    def warm_up(self) -> None:
        self._model.get()

    def to_dict(self) -> dict[str, Any]:
        return default_to_dict(
            self,
            model=self.model,
            device=self.device,
            instruction=self.instruction,
            batch_size=self.batch_size,
            progress_bar=self.progress_bar,
            normalize_embeddings=self.normalize_embeddings,
            meta_fields_to_embed=self.meta_fields_to_embed,
            embedding_separator=self.embedding_separator,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InstructorDocumentEmbedder:
        return default_from_dict(cls, data)

    def text_of(self, document: Document) -> str:
        """What is embedded: the chosen meta fields, then the content, joined by ``embedding_separator``."""
        meta = [str(document.meta[key]) for key in self.meta_fields_to_embed if document.meta.get(key) is not None]
        return self.embedding_separator.join([*meta, document.content or ""])

    @component.output_types(documents=list[Document])
    def run(self, documents: list[Document]) -> dict[str, Any]:
        if not isinstance(documents, list) or not all(isinstance(d, Document) for d in documents):
            raise InputTypeError(
                "InstructorDocumentEmbedder takes a list of Documents; use InstructorTextEmbedder for a string",
                param="documents",
            )
        vectors = self._model.get().encode(
            [[self.instruction, self.text_of(document)] for document in documents],
            batch_size=self.batch_size,
            normalize_embeddings=self.normalize_embeddings,
            show_progress_bar=self.progress_bar,
        )
        return {"documents": [replace(d, embedding=v.tolist()) for d, v in zip(documents, vectors, strict=True)]}
