"""A fine-tuned model's folder carries its instructions: INSTRUCTOR(path).instructions, the defaults of
encode_queries / encode_corpus, the prompts sentence-transformers reads, and serve's default."""

from __future__ import annotations

import json

import numpy as np
import pytest

from instructor_embed import INSTRUCTOR, InputError
from instructor_embed.instructions import RETRIEVAL, InstructionPair, TrainedInstructions

QUERY, DOCUMENT = "Represent the ticket for finding its answer: ", "Represent the answer for retrieval: "


@pytest.fixture(scope="module")
def trained_dir(minilm_dir, tmp_path_factory):
    model = INSTRUCTOR(minilm_dir, device="cpu")
    model.instructions = TrainedInstructions({"tickets": InstructionPair(QUERY, DOCUMENT)})
    folder = tmp_path_factory.mktemp("trained")
    model.save(folder)
    return folder


def test_the_instructions_round_trip_and_become_the_defaults(trained_dir, minilm_dir):
    model = INSTRUCTOR(trained_dir, device="cpu")
    assert model.instructions.tasks == {"tickets": InstructionPair(QUERY, DOCUMENT)}
    assert model.instructions.default == InstructionPair(QUERY, DOCUMENT)
    texts = ["My card was declined abroad."]
    np.testing.assert_allclose(model.encode_queries(texts), model.encode([[QUERY, texts[0]]]), atol=1e-6)
    np.testing.assert_allclose(model.encode_corpus(texts), model.encode([[DOCUMENT, texts[0]]]), atol=1e-6)
    np.testing.assert_allclose(model.encode_queries(texts, instruction=None), model.encode(texts), atol=1e-6)
    config = json.loads((trained_dir / "config_sentence_transformers.json").read_text())
    assert config["prompts"] == {"query": QUERY, "document": DOCUMENT}
    base = INSTRUCTOR(minilm_dir, device="cpu")  # no instructions.json: the authors' retrieval instructions
    assert base.instructions is None
    np.testing.assert_allclose(base.encode_queries(texts), base.encode([[RETRIEVAL.query, texts[0]]]), atol=1e-6)


def test_tasks_with_different_instructions_have_no_default():
    pairs = TrainedInstructions({"a": InstructionPair("A: ", "A: "), "b": InstructionPair("B: ", "B: ")})
    assert pairs.default is None
    assert TrainedInstructions.from_json(pairs.to_json(), "x") == pairs
    with pytest.raises(InputError, match='instructions.json: expected {"tasks"'):
        TrainedInstructions.from_json({"tasks": {"a": "A: "}}, "instructions.json")


def test_a_damaged_instructions_file_is_named(trained_dir, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(trained_dir, copy)
    (copy / "instructions.json").write_text("{not json")
    with pytest.raises(InputError, match="instructions.json: not valid JSON"):
        INSTRUCTOR(copy, device="cpu")


def test_serve_uses_the_trained_query_instruction_when_a_request_gives_none(trained_dir):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from instructor_embed.server.app import create_app
    from instructor_embed.server.settings import ServedModel, ServerSettings

    model = INSTRUCTOR(trained_dir, device="cpu")
    text = "Where is my refund?"
    app = create_app(ServerSettings(models=(ServedModel("tickets", str(trained_dir)),)))
    with TestClient(app) as client:
        app.state.server.ready.wait(60)
        plain = client.post("/v1/embeddings", json={"input": text}).json()["data"][0]["embedding"]
        given = client.post("/v1/embeddings", json={"input": text, "instruction": ""}).json()["data"][0]["embedding"]
    np.testing.assert_allclose(plain, model.encode([[QUERY, text]])[0], atol=1e-5)
    np.testing.assert_allclose(given, model.encode([["", text]])[0], atol=1e-5)
