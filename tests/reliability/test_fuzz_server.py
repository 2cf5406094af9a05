"""Schema fuzzing with schemathesis against the server's own OpenAPI schema: every operation, valid and invalid
data, with and without the key; no 5xx, and every answer's status, content type and body as the schema says.
Once in-process over ASGI, once against a live ``serve`` on 127.0.0.1."""

from __future__ import annotations

import pytest
from budget import LONG

schemathesis = pytest.importorskip("schemathesis")
pytest.importorskip("fastapi")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

KEY = "fuzz-key-0123456789"
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES = 150 if LONG else 25  # per operation and mode
OPERATIONS = [
    ("/v1/embeddings", "POST"),
    ("/embed", "POST"),
    ("/v1/models", "GET"),
    ("/info", "GET"),
    ("/health", "GET"),
    ("/metrics", "GET"),
]
# Negative data needs something to break: the GET routes take no parameters, so they get positive cases only.
CASES = [(path, method, GenerationMode.POSITIVE) for path, method in OPERATIONS] + [
    (path, method, GenerationMode.NEGATIVE) for path, method in OPERATIONS if method == "POST"
]
AUTH = {"Authorization": f"Bearer {KEY}"}


def _options() -> dict:
    return {
        "api_key": KEY,
        "max_client_batch": 16,
        "max_concurrent_inputs": 64,
        "payload_limit": 200_000,
        "max_input_tokens": 64,
        "truncate": False,
    }


@pytest.fixture(scope="module")
def asgi_schema(tiny_t5_dir, tmp_path_factory):
    from fastapi.testclient import TestClient

    from instructor_embed import INSTRUCTOR
    from instructor_embed.server.app import create_app
    from instructor_embed.server.settings import ServedModel, ServerSettings

    settings_ = ServerSettings(models=(ServedModel("t5", str(tiny_t5_dir)),), **_options())
    app = create_app(settings_, load=lambda spec: INSTRUCTOR(spec.path, device="cpu"))
    # The app's lifespan runs here, and ends with this module: schemathesis would keep an app's lifespan alive
    # for the rest of the process, and with it the batcher, the tokenizing threads and the GIL switch interval,
    # after which in-process loads of the tiny T5 in later tests failed ("missing encoder.embed_tokens.weight").
    with TestClient(app):
        assert app.state.server.ready.wait(120), app.state.server.load_error
        yield schemathesis.openapi.from_asgi("/openapi.json", _RequestsOnly(app))


class _RequestsOnly:
    """The app for HTTP scopes; its lifespan is the fixture's, so schemathesis's start-up is answered here."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "lifespan":
            return await self.app(scope, receive, send)
        while True:
            message = await receive()
            kind = message["type"].removeprefix("lifespan.")
            await send({"type": f"lifespan.{kind}.complete"})
            if kind == "shutdown":
                return


@pytest.fixture(scope="module")
def live_schema(tiny_t5_dir, tmp_path_factory):
    from serving import running_server

    options = _options()
    args = ["--model", f"t5={tiny_t5_dir}", "--device", "cpu", "--api-key", KEY, "--quiet"]
    for name in ("max_client_batch", "max_concurrent_inputs", "payload_limit", "max_input_tokens"):
        args += [f"--{name.replace('_', '-')}", str(options[name])]
    with running_server(args, tmp_path_factory.mktemp("fuzz-serve") / "serve.log") as server:
        yield schemathesis.openapi.from_url(f"{server.url}/openapi.json"), server


def _fuzz(schema, path: str, method: str, mode: GenerationMode, **call) -> None:
    strategy = schema[path][method].as_strategy(generation_mode=mode)

    @given(case=strategy)
    @settings(
        max_examples=EXAMPLES,
        derandomize=not LONG,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case):
        with_key = case.headers is None or "Authorization" not in case.headers
        case.call_and_validate(headers=AUTH if with_key else None, checks=CHECKS, **call)

    check()


def _id(value) -> str:
    return value.value if isinstance(value, GenerationMode) else str(value)


@pytest.mark.parametrize(("path", "method", "mode"), CASES, ids=_id)
def test_schema_fuzz_in_process(asgi_schema, path, method, mode):
    _fuzz(asgi_schema, path, method, mode)


@pytest.mark.slow
@pytest.mark.parametrize(("path", "method", "mode"), [case for case in CASES if case[1] == "POST"], ids=_id)
def test_schema_fuzz_against_a_live_server(live_schema, path, method, mode):
    schema, server = live_schema
    _fuzz(schema, path, method, mode, base_url=server.url)
    assert server.process.poll() is None
