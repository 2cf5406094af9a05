"""The app in-process around a held or failing model: admission until the job finishes, deadlines, a batcher
that dies for good turning /health to 503, bounded metric labels, and the key before the 404."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from instructor_embed import INSTRUCTOR, faults  # noqa: E402
from instructor_embed.server.app import create_app  # noqa: E402
from instructor_embed.server.settings import ServedModel, ServerSettings  # noqa: E402


class Held:
    """Wraps an engine so that each forward pass waits until the test lets it go."""

    def __init__(self, engine):
        self.engine, self.dimension = engine, engine.dimension
        self.started, self.go = threading.Event(), threading.Event()

    def forward(self, batch):
        self.started.set()
        assert self.go.wait(30)
        return self.engine.forward(batch)


@pytest.fixture
def app_with(tiny_t5_dir):
    def build(**options):
        settings = ServerSettings(models=(ServedModel("t5", str(tiny_t5_dir)),), **options)
        app = create_app(settings, load=lambda spec: INSTRUCTOR(spec.path, device="cpu"))
        return app

    return build


def ready(app, client):
    assert app.state.server.ready.wait(60)
    return app.state.server.models["t5"]


def eventually(condition, seconds: float = 10) -> bool:
    for _ in range(int(seconds / 0.02)):
        if condition():
            return True
        threading.Event().wait(0.02)
    return condition()


def call_and_leave(app, body: dict, leave_after: threading.Event) -> list[dict]:
    """One raw ASGI request whose client disconnects once ``leave_after`` is set; the messages sent back."""
    sent, payload = [], json.dumps(body).encode()
    steps = iter([{"type": "http.request", "body": payload, "more_body": False}])

    async def receive():
        step = next(steps, None)
        if step is not None:
            return step
        await asyncio.get_running_loop().run_in_executor(None, leave_after.wait, 30)
        return {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": "/v1/embeddings", "raw_path": b"/v1/embeddings", "query_string": b"", "root_path": "",
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())],
        "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80),
    }  # fmt: skip
    asyncio.run(app(scope, receive, send))
    return sent


def test_inputs_count_until_their_job_finishes_not_until_their_client_leaves(app_with):
    """Defect: in_flight was released when the client disconnected while its job kept running."""
    app = app_with(max_concurrent_inputs=4, max_client_batch=4)
    with TestClient(app) as client:
        served = ready(app, client)
        held = Held(served.batcher.engine)
        served.batcher.engine = held
        leave = threading.Event()
        answers = []
        caller = threading.Thread(target=lambda: answers.append(call_and_leave(app, {"input": ["a", "b", "c"]}, leave)))
        caller.start()
        assert held.started.wait(30), answers
        leave.set()
        caller.join(30)
        state = app.state.server
        assert state.in_flight == 3  # the client is gone, its batch still runs
        over = client.post("/v1/embeddings", json={"input": ["d", "e"]})
        assert over.status_code == 429 and over.headers["retry-after"] == "1"
        held.go.set()
        assert eventually(lambda: state.in_flight == 0)
        assert client.post("/v1/embeddings", json={"input": ["d", "e"]}).status_code == 200


def test_a_request_past_its_deadline_gets_503_timeout_and_its_job_is_dropped(app_with):
    app = app_with(request_timeout_s=0.5)
    with TestClient(app) as client:
        served = ready(app, client)
        held = Held(served.batcher.engine)
        served.batcher.engine = held
        first = threading.Thread(target=client.post, args=("/v1/embeddings",), kwargs={"json": {"input": "a"}})
        first.start()
        assert held.started.wait(30)
        late = client.post("/v1/embeddings", json={"input": "b"})
        assert late.status_code == 503 and late.headers["retry-after"] == "1"
        assert late.json()["error"]["code"] == "timeout" and "--request-timeout" in late.json()["error"]["message"]
        held.go.set()
        first.join(30)
        assert eventually(lambda: app.state.server.in_flight == 0)  # both jobs finished or dropped


def test_a_batcher_that_keeps_dying_turns_health_503_and_pending_requests_get_503(app_with):
    app = app_with()
    with TestClient(app) as client:
        served = ready(app, client)
        for death in range(served.batcher.max_restarts + 1):
            with faults.armed("batcher.batch", "raise"):
                answer = client.post("/v1/embeddings", json={"input": "x"})
            assert answer.status_code == 503 and answer.json()["error"]["code"] == "batcher_died"
            if death < served.batcher.max_restarts:
                assert client.get("/health").status_code == 200
                assert client.post("/v1/embeddings", json={"input": "x"}).status_code == 200
        health = client.get("/health")
        assert health.status_code == 503 and health.json()["status"] == "failed"
        assert "not restarted" in health.json()["error"]
        refused = client.post("/v1/embeddings", json={"input": "x"})
        assert refused.status_code == 503 and refused.json()["error"]["code"] == "unavailable"


def test_unknown_paths_need_the_key_and_metric_labels_stay_bounded(app_with):
    """Defects: 404s came before authentication, and failures were labelled with the raw path."""
    app = app_with(api_key="sesame-0123")
    with TestClient(app) as client:
        ready(app, client)
        for number in range(50):
            answer = client.get(f"/probe-{number}")
            assert answer.status_code == 401 and answer.json()["error"]["code"] == "invalid_api_key"
        assert client.get("/probe", headers={"Authorization": "Bearer sesame-0123"}).status_code == 404
        assert client.post("/v1/embeddings", json={"input": "x"}).status_code == 401
        metrics = client.get("/metrics").text
        assert "probe" not in metrics
        routes = {line.split('route="')[1].split('"')[0] for line in metrics.splitlines() if 'route="' in line}
        assert routes <= {"/v1/embeddings", "/metrics", "other"}
