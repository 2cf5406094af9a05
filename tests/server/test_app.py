"""The app in-process: readiness, and errors that need no model."""

from __future__ import annotations

import threading

import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from instructor_embed import InputError  # noqa: E402


def test_health_is_503_until_the_models_load(tiny_t5_dir):
    from instructor_embed import INSTRUCTOR
    from instructor_embed.server.app import create_app
    from instructor_embed.server.settings import ServedModel, ServerSettings

    release = threading.Event()

    def slow_load(spec: ServedModel) -> INSTRUCTOR:
        release.wait(30)
        return INSTRUCTOR(spec.path, device="cpu")

    app = create_app(ServerSettings(models=(ServedModel("t5", str(tiny_t5_dir)),)), load=slow_load)
    with TestClient(app) as client:
        assert client.get("/health").status_code == 503
        loading = client.post("/v1/embeddings", json={"input": "x"})
        assert loading.status_code == 503 and loading.json()["error"]["code"] == "loading"
        release.set()
        app.state.server.ready.wait(30)
        assert client.get("/health").json() == {"status": "ok", "models": ["t5"]}
        assert len(client.post("/v1/embeddings", json={"input": "x"}).json()["data"][0]["embedding"]) == 768


def test_a_model_that_fails_to_load_is_reported_by_health(tmp_path):
    from instructor_embed.server.app import create_app
    from instructor_embed.server.settings import ServedModel, ServerSettings

    app = create_app(ServerSettings(models=(ServedModel("gone", str(tmp_path / "missing")),)))
    with TestClient(app) as client:
        for _ in range(100):
            body = client.get("/health").json()
            if body["status"] == "failed":
                break
            threading.Event().wait(0.05)
        assert body["status"] == "failed" and "No model directory" in body["error"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"models": ()}, "at least one --model"),
        ({"max_client_batch": 5000}, "must not exceed --max-concurrent-inputs"),
        ({"max_batch_tokens": 0}, "--max-batch-tokens must be at least 1"),
    ],
)
def test_bad_settings_are_named(options, message):
    from instructor_embed.server.settings import ServedModel, ServerSettings

    settings = ServerSettings(**{"models": (ServedModel("m", "p"),), **options})
    with pytest.raises(InputError, match=message):
        settings.validate()


def test_model_names(tmp_path):
    from instructor_embed.server.settings import ServedModel

    assert ServedModel.parse("fast=hkunlp/instructor-base") == ServedModel("fast", "hkunlp/instructor-base")
    assert ServedModel.parse("hkunlp/instructor-large") == ServedModel(
        "hkunlp/instructor-large", "hkunlp/instructor-large"
    )
    (tmp_path / "my-model").mkdir()
    assert ServedModel.parse(str(tmp_path / "my-model")).name == "my-model"
    with pytest.raises(InputError, match="NAME=PATH_OR_ID"):
        ServedModel.parse("=x")


def test_an_unpaired_surrogate_is_a_400_naming_the_input_and_the_next_request_is_served(tiny_t5_dir):
    """Valid JSON ("\\ud800" decodes to a lone surrogate) used to be a 500 from the tokenizer's TypeError."""
    from instructor_embed import INSTRUCTOR
    from instructor_embed.server.app import create_app
    from instructor_embed.server.settings import ServedModel, ServerSettings

    app = create_app(
        ServerSettings(models=(ServedModel("t5", str(tiny_t5_dir)),)),
        load=lambda spec: INSTRUCTOR(spec.path, device="cpu"),
    )
    with TestClient(app) as client:
        app.state.server.ready.wait(60)
        body = b'{"input": ["fine", "\\ud800 unpaired"]}'
        refused = client.post("/v1/embeddings", content=body, headers={"content-type": "application/json"})
        assert refused.status_code == 400
        error = refused.json()["error"]
        assert error["param"] == "input[1]" and "unpaired UTF-16 surrogate (U+D800" in error["message"]
        assert client.post("/v1/embeddings", json={"input": "fine"}).status_code == 200
