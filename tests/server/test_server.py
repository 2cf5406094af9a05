"""The server over real HTTP on loopback, driven by the official openai client, LangChain and raw requests."""

from __future__ import annotations

import re
import signal
import threading
import time

import numpy as np
import pytest
from serving import API_KEY, running_server

pytestmark = pytest.mark.slow
pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

TEXTS = ["A man is playing a guitar.", "The stock market fell sharply on Monday.", "Aspirin lowers fever."]
INSTRUCTION = "Represent the sentence for retrieving duplicate sentences: "
AUTH = {"Authorization": f"Bearer {API_KEY}"}


def openai_client(server):
    openai = pytest.importorskip("openai")
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=API_KEY, max_retries=0)


def vectors(response) -> np.ndarray:
    return np.array([item.embedding for item in sorted(response.data, key=lambda item: item.index)])


def test_openai_client_base64_and_float_equal_the_library(server, minilm_model):
    client = openai_client(server)
    expected = minilm_model.encode(TEXTS)
    as_base64 = client.embeddings.create(model="minilm", input=TEXTS)  # the client asks for base64 and decodes it
    as_float = client.embeddings.create(model="minilm", input=TEXTS, encoding_format="float")
    assert np.abs(vectors(as_base64) - expected).max() <= 1e-6
    assert np.abs(vectors(as_float) - expected).max() <= 1e-6
    tokens = sum(
        minilm_model.engine.tokenize([__import__("instructor_embed").Item(None, t) for t in TEXTS]).token_counts
    )
    assert as_float.usage.prompt_tokens == as_float.usage.total_tokens == tokens
    assert as_float.model == "minilm" and [item.index for item in as_float.data] == [0, 1, 2]


def test_instructions_dimensions_and_a_second_model(server, minilm_model, tiny_model):
    client = openai_client(server)
    with_instruction = client.embeddings.create(model="minilm", input=TEXTS, extra_body={"instruction": INSTRUCTION})
    expected = minilm_model.encode([[INSTRUCTION, text] for text in TEXTS])
    assert np.abs(vectors(with_instruction) - expected).max() <= 1e-6
    per_input = [INSTRUCTION, "Represent the Financial statement: ", INSTRUCTION]
    mixed = client.embeddings.create(model="minilm", input=TEXTS, extra_body={"instruction": per_input})
    expected_mixed = minilm_model.encode([list(pair) for pair in zip(per_input, TEXTS, strict=True)])
    assert np.abs(vectors(mixed) - expected_mixed).max() <= 1e-6
    short = vectors(client.embeddings.create(model="minilm", input=TEXTS, dimensions=64))
    cut = expected_plain = minilm_model.encode(TEXTS)[:, :64]
    assert np.abs(short - cut / np.linalg.norm(expected_plain, axis=1, keepdims=True)).max() <= 1e-6
    t5 = client.embeddings.create(model="t5", input="one text", extra_body={"instruction": INSTRUCTION})
    assert np.abs(vectors(t5)[0] - tiny_model.encode([[INSTRUCTION, "one text"]])[0]).max() <= 1e-6
    assert [model.id for model in client.models.list().data] == ["minilm", "t5"]


def test_langchain_openai_embeddings(server, minilm_model):
    langchain_openai = pytest.importorskip("langchain_openai")
    embeddings = langchain_openai.OpenAIEmbeddings(
        model="minilm", base_url=f"{server.url}/v1", api_key=API_KEY, check_embedding_ctx_length=False
    )
    documents = np.array(embeddings.embed_documents(TEXTS))
    assert np.abs(documents - minilm_model.encode(TEXTS)).max() <= 1e-6
    assert np.abs(np.array(embeddings.embed_query(TEXTS[0])) - minilm_model.encode(TEXTS[0])).max() <= 1e-6


def test_native_embed_route(server, tiny_model):
    items = [[INSTRUCTION, "a text"], "plain text"]
    response = httpx.post(
        f"{server.url}/embed",
        json={"inputs": items, "model": "t5", "truncate_dim": 16, "normalize": True},
        headers=AUTH,
    )
    assert response.status_code == 200, response.text
    expected = tiny_model.encode(items, truncate_dim=16, normalize_embeddings=True)
    assert np.abs(np.array(response.json()["embeddings"]) - expected).max() <= 1e-6


def post(server, body, path="/v1/embeddings", headers=AUTH, **kwargs):
    return httpx.post(f"{server.url}{path}", json=body, headers=headers, timeout=30, **kwargs)


@pytest.mark.parametrize(
    ("body", "status", "param", "words"),
    [
        ({"model": "nope", "input": "x"}, 404, "model", "served: minilm, t5"),
        ({"model": "minilm", "input": []}, 400, "input", "must not be empty"),
        ({"model": "minilm", "input": ["ok", "  "]}, 400, "input[1]", "empty string"),
        ({"model": "minilm", "input": [[1, 2, 3]]}, 400, "input", "check_embedding_ctx_length=False"),
        ({"model": "minilm", "input": [5, 6]}, 400, "input", "token ids"),
        ({"model": "minilm", "input": ["x"] * 33}, 400, "input", "at most 32 per request"),
        ({"model": "minilm", "input": "x", "dimensions": 385}, 400, "dimensions", "at most 384"),
        ({"model": "minilm", "input": ["a", "b"], "instruction": ["i"]}, 400, "instruction", "one per input"),
        ({"model": "minilm", "input": ["a", "word " * 200]}, 400, "input[1]", "more than 128 tokens"),
        ({"model": "minilm", "input": "x", "encoding_format": "int8"}, 400, "encoding_format", "float"),
        ({"model": "minilm"}, 400, "input", "Field required"),
    ],
)
def test_errors_have_openai_shape_and_the_server_keeps_serving(server, body, status, param, words):
    response = post(server, body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["param"] == param and words in error["message"] and set(error) == {"message", "type", "param", "code"}
    assert response.headers["x-request-id"]
    assert post(server, {"model": "minilm", "input": "still fine"}).status_code == 200


def test_the_openai_client_shows_our_error(server):
    openai = pytest.importorskip("openai")
    with pytest.raises(openai.NotFoundError, match="served: minilm, t5"):
        openai_client(server).embeddings.create(model="gpt-x", input="hello")


def test_native_route_names_the_bad_item(server):
    response = post(server, {"inputs": ["ok", ["only one"]], "model": "t5"}, path="/embed")
    assert response.status_code == 400 and response.json()["error"]["param"] == "inputs[1]"


def test_keys_bodies_and_limits(server):
    assert post(server, {"model": "minilm", "input": "x"}, headers={}).status_code == 401
    wrong = post(server, {"model": "minilm", "input": "x"}, headers={"Authorization": "Bearer wrong"})
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_api_key"
    assert httpx.get(f"{server.url}/health").status_code == 200
    assert httpx.get(f"{server.url}/metrics").status_code == 200
    too_big = post(server, {"model": "minilm", "input": "x" * 120_000})
    assert too_big.status_code == 413 and "limit of 100000" in too_big.json()["error"]["message"]
    broken = httpx.post(
        f"{server.url}/v1/embeddings", content=b"{not json", headers={**AUTH, "content-type": "application/json"}
    )
    assert broken.status_code == 400 and "error" in broken.json()
    info = httpx.get(f"{server.url}/info", headers=AUTH).json()
    assert [m["dimension"] for m in info["models"]] == [384, 768] and info["limits"]["max_client_batch"] == 32
    assert "api_key" not in info["limits"]
    assert API_KEY not in server.output()  # never logged
    assert httpx.get(f"{server.url}/docs").status_code == 200


def metric(server, name: str) -> float:
    text = httpx.get(f"{server.url}/metrics").text
    return sum(float(value) for value in re.findall(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.MULTILINE))


def run_concurrently(count: int, request) -> list:
    results: list = [None] * count
    threads = [threading.Thread(target=lambda i=i: results.__setitem__(i, request(i))) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_concurrent_requests_share_batches_and_get_their_own_vectors(server, minilm_model):
    before_batches = metric(server, "instructor_embed_batch_requests_count")
    before_requests = metric(server, "instructor_embed_batch_requests_sum")
    texts = [f"sentence number {i} about topic {i % 5}" for i in range(16)]
    responses = run_concurrently(
        16, lambda i: post(server, {"model": "minilm", "input": texts[i], "encoding_format": "float"})
    )
    assert all(response.status_code == 200 for response in responses)
    got = np.array([response.json()["data"][0]["embedding"] for response in responses])
    assert np.abs(got - minilm_model.encode(texts)).max() <= 1e-6
    batches = metric(server, "instructor_embed_batch_requests_count") - before_batches
    merged = metric(server, "instructor_embed_batch_requests_sum") - before_requests
    assert merged == 16 and batches < 16  # several requests' inputs ran in one forward pass


def test_over_the_in_flight_limit_answers_429_not_5xx(server):
    body = {"model": "minilm", "input": ["a longer text that takes the model a little while " * 5] * 32}
    responses = run_concurrently(10, lambda i: post(server, body))
    statuses = sorted(response.status_code for response in responses)
    assert set(statuses) <= {200, 429} and 200 in statuses and 429 in statuses, statuses
    limited = next(response for response in responses if response.status_code == 429)
    assert limited.headers["retry-after"] == "1" and limited.json()["error"]["code"] == "rate_limit_exceeded"


def test_sigterm_during_load_loses_no_accepted_request(tmp_path, minilm_dir):
    args = ["--model", f"m={minilm_dir}", "--max-batch-size", "8", "--max-concurrent-inputs", "4096", "--device", "cpu"]
    with running_server(args, tmp_path / "serve.log") as server:
        outcomes: list = [None] * 12
        started = threading.Event()

        def request(i: int) -> None:
            try:
                with httpx.Client(timeout=120) as client:
                    started.set()
                    body = {"model": "m", "input": [f"text {i} {k} " * 40 for k in range(24)]}
                    outcomes[i] = client.post(f"{server.url}/v1/embeddings", json=body).status_code
            except httpx.ConnectError:
                outcomes[i] = "not accepted"
            except httpx.HTTPError as exc:
                outcomes[i] = f"lost: {exc!r}"

        threads = [threading.Thread(target=request, args=(i,)) for i in range(12)]
        for thread in threads:
            thread.start()
        started.wait(10)
        time.sleep(0.5)
        code = server.stop()
        for thread in threads:
            thread.join()
    # uvicorn finishes what it accepted, shuts the app down, then ends by the signal it caught (exit -15).
    assert code in (0, -signal.SIGTERM) and "Application shutdown complete" in server.output(), server.output()[-2000:]
    assert not [o for o in outcomes if o not in (200, "not accepted")], outcomes
    assert outcomes.count(200) >= 6, outcomes


def test_a_model_that_cannot_load_ends_serve_with_a_clear_error(tmp_path):
    from serving import ServerProcess

    server = ServerProcess(["--model", f"gone={tmp_path / 'missing'}"], tmp_path / "serve.log")
    try:
        assert server.process.wait(timeout=120) == 2
    finally:
        server.stop()
    assert "No model directory at" in server.output() and "Traceback" not in server.output()


def test_a_batcher_that_keeps_dying_ends_serve_non_zero_for_its_supervisor(tmp_path, tiny_t5_dir):
    """Every batch kills the model's worker: each request gets 503 at once (never a hang), the worker restarts
    three times, then /health says why and serve exits 2 (the CLI's error status), so systemd or Kubernetes restarts it."""
    from serving import ServerProcess

    faults = {"INSTRUCTOR_EMBED_FAULTS": "batcher.batch=raise@1+"}
    server = ServerProcess(["--model", f"t5={tiny_t5_dir}", "--device", "cpu"], tmp_path / "serve.log", env=faults)
    try:
        server.wait_ready()
        for _ in range(4):
            answer = httpx.post(f"{server.url}/v1/embeddings", json={"input": "x"}, timeout=30)
            assert answer.status_code == 503 and answer.json()["error"]["code"] == "batcher_died"
        health = httpx.get(f"{server.url}/health", timeout=5)
        assert health.status_code == 503 and "not restarted" in health.json()["error"]
        assert server.process.wait(timeout=60) == 2
    finally:
        server.stop()
    assert "exiting so that a supervisor restarts the server" in server.output()
