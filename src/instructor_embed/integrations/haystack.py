"""Haystack: INSTRUCTOR text and document embedder components (extra ``haystack``).

The parameters of Haystack's former instructor embedders, serialisable with ``to_dict``/``from_dict`` as
components must be, plus this library's ``dtype``, ``backend``, ``quantize`` and a remote mode (``base_url``; the
API key from ``INSTRUCTOR_EMBED_API_KEY`` or a ``Secret``, never serialised as its value)::

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
from haystack.utils import Secret, deserialize_secrets_inplace

from ..errors import InputTypeError
from ..spec import as_spec
from ._backend import Backend

_KEY = Secret.from_env_var("INSTRUCTOR_EMBED_API_KEY", strict=False)  # remote mode's key, read when used


def _set_model_options(component, model, device, dtype, backend, quantize, base_url, api_key: Secret) -> None:
    """Keep the model options as attributes (``to_dict`` serialises them) and make the component's backend."""
    component.model, component.device, component.dtype = model, device, dtype
    component.backend, component.quantize, component.base_url, component.api_key = backend, quantize, base_url, api_key
    spec = as_spec(model, device=device, dtype=dtype, backend=backend, quantize=quantize)
    component._backend = Backend(spec, base_url=base_url, api_key=api_key.resolve_value(), extra="haystack")


def _model_options(component) -> dict[str, Any]:
    """The model options every component serialises (the API key as a reference to its variable, never its value)."""
    return {
        "model": component.model,
        "device": component.device,
        "dtype": component.dtype,
        "backend": component.backend,
        "quantize": component.quantize,
        "base_url": component.base_url,
        "api_key": component.api_key.to_dict(),
    }


def _from_dict(cls, data: dict[str, Any]):
    data = {**data, "init_parameters": dict(data["init_parameters"])}  # the caller's dict stays as it was
    deserialize_secrets_inplace(data["init_parameters"], keys=["api_key"])
    return default_from_dict(cls, data)


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
        *,
        dtype: str | None = None,
        backend: str = "torch",
        quantize: str | None = None,
        base_url: str | None = None,
        api_key: Secret = _KEY,
    ):
        self.instruction, self.normalize_embeddings, self.progress_bar = instruction, normalize_embeddings, progress_bar
        _set_model_options(self, model, device, dtype, backend, quantize, base_url, api_key)

    def warm_up(self) -> None:
        self._backend.warm_up()

    def to_dict(self) -> dict[str, Any]:
        return default_to_dict(
            self,
            **_model_options(self),
            instruction=self.instruction,
            normalize_embeddings=self.normalize_embeddings,
            progress_bar=self.progress_bar,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InstructorTextEmbedder:
        return _from_dict(cls, data)

    @component.output_types(embedding=list[float])
    def run(self, text: str) -> dict[str, Any]:
        if not isinstance(text, str):
            raise InputTypeError(
                "InstructorTextEmbedder takes one string; use InstructorDocumentEmbedder for documents", param="text"
            )
        vector = self._backend.embed(
            [text],
            self.instruction,
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
        *,
        dtype: str | None = None,
        backend: str = "torch",
        quantize: str | None = None,
        base_url: str | None = None,
        api_key: Secret = _KEY,
    ):
        self.instruction, self.batch_size = instruction, batch_size
        self.progress_bar, self.normalize_embeddings = progress_bar, normalize_embeddings
        self.meta_fields_to_embed, self.embedding_separator = meta_fields_to_embed or [], embedding_separator
        _set_model_options(self, model, device, dtype, backend, quantize, base_url, api_key)

    def warm_up(self) -> None:
        self._backend.warm_up()

    def to_dict(self) -> dict[str, Any]:
        return default_to_dict(
            self,
            **_model_options(self),
            instruction=self.instruction,
            batch_size=self.batch_size,
            progress_bar=self.progress_bar,
            normalize_embeddings=self.normalize_embeddings,
            meta_fields_to_embed=self.meta_fields_to_embed,
            embedding_separator=self.embedding_separator,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InstructorDocumentEmbedder:
        return _from_dict(cls, data)

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
        vectors = self._backend.embed(
            [self.text_of(document) for document in documents],
            self.instruction,
            batch_size=self.batch_size,
            normalize_embeddings=self.normalize_embeddings,
            show_progress_bar=self.progress_bar,
        )
        return {"documents": [replace(d, embedding=v.tolist()) for d, v in zip(documents, vectors, strict=True)]}
