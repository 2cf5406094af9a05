"""Every integration takes the same model options (ModelSpec's) and the same remote mode."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

INSTRUCTION = "Represent the sentence: "
SENTENCES = ["A man plays a guitar.", "The bank raised rates.", "Onions are being sliced."]


def _langchain(model, **options):
    from instructor_embed.integrations.langchain import InstructorEmbeddings

    if "device" in options:  # the original class's spelling: model options go in model_kwargs
        options["model_kwargs"] = {"device": options.pop("device")}
    embeddings = InstructorEmbeddings(model_name=model, embed_instruction=INSTRUCTION, **options)
    return embeddings._backend, lambda: np.array(embeddings.embed_documents(SENTENCES))


def _llamaindex(model, **options):
    from instructor_embed.integrations.llamaindex import InstructorEmbedding

    embedding = InstructorEmbedding(model_name=model, text_instruction=INSTRUCTION, **options)
    return embedding._backend, lambda: np.array(embedding.get_text_embedding_batch(SENTENCES))


def _haystack(model, **options):
    from haystack import Document

    from instructor_embed.integrations.haystack import InstructorDocumentEmbedder

    embedder = InstructorDocumentEmbedder(model=model, instruction=INSTRUCTION, progress_bar=False, **options)
    documents = [Document(content=text) for text in SENTENCES]
    return embedder._backend, lambda: np.array([d.embedding for d in embedder.run(documents)["documents"]])


def _chroma(model, **options):
    from instructor_embed.integrations.chroma import InstructorEmbeddingFunction

    function = InstructorEmbeddingFunction(model_name=model, instruction=INSTRUCTION, **options)
    return function._backend, lambda: np.array(function(SENTENCES))


def _lancedb(model, **options):
    from instructor_embed.integrations.lancedb import InstructorEmbeddingFunction

    function = InstructorEmbeddingFunction(
        name=model, source_instruction=INSTRUCTION, normalize_embeddings=False, show_progress_bar=False, **options
    )
    return function._backend, lambda: np.array(function.compute_source_embeddings(SENTENCES))


def _milvus(model, **options):
    from instructor_embed.integrations.milvus import InstructorEmbeddingFunction

    function = InstructorEmbeddingFunction(
        model_name=model, doc_instruction=INSTRUCTION, normalize_embeddings=False, **options
    )
    return function._backend, lambda: np.array(function.encode_documents(SENTENCES))


INTEGRATIONS = {
    "langchain": _langchain,
    "llamaindex": _llamaindex,
    "haystack": _haystack,
    "chroma": _chroma,
    "lancedb": _lancedb,
    "milvus": _milvus,
}
PACKAGES = {
    "langchain": "langchain_core",
    "llamaindex": "llama_index.core",
    "haystack": "haystack",
    "chroma": "chromadb",
    "lancedb": "lancedb",
    "milvus": "pymilvus",
}


@pytest.mark.parametrize("name", list(INTEGRATIONS))
def test_dtype_backend_and_quantize_reach_the_model(name, tiny_t5_dir):
    pytest.importorskip(PACKAGES[name])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # bf16 on a CPU without native bf16 warns that it is slow
        backend, embed = INTEGRATIONS[name](str(tiny_t5_dir), device="cpu", dtype="bfloat16")
        vectors = embed()
    assert backend.model.transformer.runtime.dtype == torch.bfloat16
    assert vectors.shape == (3, 768) and np.isfinite(vectors).all()


@pytest.mark.slow
def test_every_integration_has_a_remote_mode(minilm_dir, minilm_model, tmp_path):
    pytest.importorskip("fastapi")
    from serving import running_server

    expected = minilm_model.encode([[INSTRUCTION, s] for s in SENTENCES])
    with running_server(["--model", f"minilm={minilm_dir}", "--device", "cpu"], tmp_path / "log") as server:
        for name, build in INTEGRATIONS.items():
            if not _importable(PACKAGES[name]):
                continue
            backend, embed = build("minilm", base_url=server.url)
            assert backend.remote is not None and backend._model is None, name  # nothing loaded locally
            assert np.abs(embed() - expected).max() <= 1e-6, name


def _importable(module: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False
