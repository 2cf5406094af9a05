"""The FastAPI app: OpenAI-compatible ``/v1/embeddings``, the native ``/embed``, health, info and metrics.

``create_app(settings)`` returns the app; its lifespan loads the models on a thread (``/health`` answers 503
until they are ready) and, at shutdown, lets every batcher finish what it accepted. Errors have OpenAI's shape,
``{"error": {"message", "type", "param", "code"}}``, so clients show them; internals never reach a client.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import logging
import sys
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass

import numpy as np
import torch
from fastapi import Depends, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from ..encode import postprocess
from ..errors import InputError
from ..inputs import parse_item
from ..model import INSTRUCTOR
from ..tokenization import Item, Tokenized
from .batcher import Batcher
from .metrics import Metrics
from .schema import EmbeddingRequest, EmbedRequest, error_body
from .settings import ServedModel, ServerSettings

logger = logging.getLogger("instructor_embed.server")

# The batcher thread gives up the GIL at every torch op; with Python's default 5 ms switch interval the busy
# event loop then holds it for up to 5 ms each time, and a forward pass of a hundred ops crawls.
GIL_SWITCH_INTERVAL = 0.0002

# Requests this small are tokenized on the event loop (tens of microseconds); larger ones on a worker thread.
INLINE_TOKENIZE_INPUTS, INLINE_TOKENIZE_CHARS = 8, 4000

TOKEN_IDS_REFUSED = (
    "input holds token ids; this server takes text only, because token ids from another tokenizer (e.g. tiktoken's) "
    "mean nothing to this model. Send the texts. LangChain's OpenAIEmbeddings sends token ids unless created with "
    "check_embedding_ctx_length=False."
)


ROUTES = ("/v1/embeddings", "/embeddings", "/embed", "/v1/models", "/models", "/info", "/health", "/metrics", "/docs")


class APIError(Exception):
    """An error answer: HTTP status and OpenAI's error fields."""

    def __init__(
        self,
        status: int,
        message: str,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type, param, code
        self.headers = headers

    def response(self) -> JSONResponse:
        body = error_body(self.message, self.type, self.param, self.code)
        return JSONResponse(body, status_code=self.status, headers=self.headers)


class ClientGone(Exception):
    """The client disconnected before its answer was ready."""


@dataclass
class Served:
    """A loaded model, its batcher, and its input limit."""

    name: str
    path: str
    model: INSTRUCTOR
    batcher: Batcher
    max_input_tokens: int
    truncate: bool

    def tokenize(self, items: list[Item]) -> Tokenized:
        """Tokenize (thread-safe); an input over ``max_input_tokens`` is refused unless truncation is allowed."""
        engine = self.model.engine
        if self.truncate:
            return engine.tokenize(items, max_length=self.max_input_tokens)
        tokenized = engine.tokenize(items, max_length=self.max_input_tokens + 1)  # one more shows who is too long
        for index, count in enumerate(tokenized.token_counts):
            if count > self.max_input_tokens:
                raise InputError(
                    f"input {index} has more than {self.max_input_tokens} tokens (instruction included), this "
                    "server's limit; shorten it, or start the server with --truncate to cut long inputs",
                    param="input",
                    index=index,
                )
        return tokenized


class ServerState:
    """What the routes share: settings, metrics, the models once loaded, and the inputs in flight."""

    def __init__(self, settings: ServerSettings, load: Callable[[ServedModel], INSTRUCTOR]):
        self.settings, self.load = settings, load
        self.metrics = Metrics()
        self.models: dict[str, Served] = {}
        self.ready = threading.Event()
        self.load_error: str | None = None
        self.in_flight = 0  # inputs accepted and not answered; touched on the event loop only

    def load_all(self) -> None:
        settings = self.settings
        try:
            for spec in settings.models:
                model = self.load(spec)
                batcher = Batcher(
                    model.engine,
                    spec.name,
                    self.metrics,
                    max_batch_tokens=settings.batch_tokens(model.device.type),
                    max_batch_size=settings.max_batch_size,
                    max_wait_ms=settings.max_wait_ms,
                )
                limit = min(settings.max_input_tokens or model.max_seq_length, model.max_seq_length)
                self.models[spec.name] = Served(spec.name, spec.path, model, batcher, limit, settings.truncate)
                batcher.start()
                logger.info(json.dumps({"event": "model_loaded", "model": spec.name, "repr": repr(model)}))
            self.ready.set()
        except Exception as exc:  # reported by /health and the log; serve exits
            self.load_error = f"{type(exc).__name__}: {exc}"
            logger.error(json.dumps({"event": "load_failed", "error": self.load_error}))

    def close(self) -> None:
        for served in self.models.values():
            served.batcher.stop()

    def require_ready(self) -> None:
        if not self.ready.is_set():
            raise APIError(503, "the models are still loading; retry shortly", "server_error", code="loading")

    def served(self, name: str | None, param: str = "model") -> Served:
        self.require_ready()
        if name is None:
            if len(self.models) == 1:
                return next(iter(self.models.values()))
            raise APIError(400, f"model is required; served: {', '.join(self.models)}", param=param)
        if name not in self.models:
            raise APIError(
                404,
                f"model {name!r} is not served here; served: {', '.join(self.models)}",
                param=param,
                code="model_not_found",
            )
        return self.models[name]


def create_app(settings: ServerSettings, load: Callable[[ServedModel], INSTRUCTOR] | None = None) -> FastAPI:
    """The server as an ASGI app; ``load`` builds each model (default: ``INSTRUCTOR`` with the settings' options)."""
    settings.validate()
    state = ServerState(settings, load or _loader(settings))

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        previous = sys.getswitchinterval()  # process-wide: put it back for an app embedded in a larger program
        sys.setswitchinterval(GIL_SWITCH_INTERVAL)
        threading.Thread(target=state.load_all, name="model-loader", daemon=True).start()
        try:
            yield
        finally:
            state.close()  # uvicorn has stopped accepting and answered everything in flight; drain the batchers
            sys.setswitchinterval(previous)

    app = FastAPI(
        title="instructor-embed",
        summary="INSTRUCTOR embeddings with per-request instructions, OpenAI-compatible",
        lifespan=lifespan,
    )
    app.state.server = state
    app.add_middleware(RequestContext, state=state)
    _add_error_handlers(app, state)
    authorized = Depends(_authorizer(settings.api_key))

    @app.get("/health", summary="200 once every model is loaded, 503 before")
    async def health() -> JSONResponse:
        if state.ready.is_set():
            return JSONResponse({"status": "ok", "models": list(state.models)})
        status = "failed" if state.load_error else "loading"
        return JSONResponse({"status": status, "error": state.load_error}, status_code=503)

    @app.get("/metrics", summary="Prometheus metrics")
    async def metrics() -> Response:
        return Response(state.metrics.render(), media_type="text/plain; version=0.0.4")

    @app.get("/v1/models", dependencies=[authorized], summary="The served models (OpenAI's shape)")
    @app.get("/models", dependencies=[authorized], include_in_schema=False)
    async def models() -> dict:
        state.require_ready()
        data = [{"id": name, "object": "model", "created": 0, "owned_by": "instructor-embed"} for name in state.models]
        return {"object": "list", "data": data}

    @app.get("/info", dependencies=[authorized], summary="Models, dimensions, limits")
    async def info() -> dict:
        limits = {k: v for k, v in asdict(settings).items() if k not in ("api_key", "models", "host", "port")}
        described = [
            {
                "name": served.name,
                "path": served.path,
                "dimension": served.model.get_sentence_embedding_dimension(),
                "max_seq_length": served.model.max_seq_length,
                "max_input_tokens": served.max_input_tokens,
                "precision": served.model.transformer.runtime.describe(),
                "device": str(served.model.device),
                "max_batch_tokens": served.batcher.max_batch_tokens,
            }
            for served in state.models.values()
        ]
        return {"ready": state.ready.is_set(), "models": described, "limits": limits}

    @app.post("/v1/embeddings", dependencies=[authorized], summary="Embeddings, as OpenAI's API, plus instruction")
    @app.post("/embeddings", dependencies=[authorized], include_in_schema=False)
    async def embeddings(body: EmbeddingRequest, request: Request) -> JSONResponse:
        served = state.served(body.model)
        texts = _texts(body.input, settings.max_client_batch)
        items = [
            Item(instruction, text)
            for instruction, text in zip(_instructions(body, texts, settings), texts, strict=True)
        ]
        dimension = served.model.get_sentence_embedding_dimension()
        if body.dimensions is not None and body.dimensions > dimension:
            raise APIError(400, f"dimensions must be at most {dimension} for {served.name}", param="dimensions")
        vectors, tokens = await _embed(state, served, items, request)
        if body.dimensions is not None:
            vectors = postprocess(vectors, truncate_dim=body.dimensions, normalize=True)
        encode = _base64 if body.encoding_format == "base64" else _floats
        rows = vectors.numpy()
        data = [{"object": "embedding", "embedding": encode(row), "index": i} for i, row in enumerate(rows)]
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        return JSONResponse({"object": "list", "data": data, "model": served.name, "usage": usage})

    @app.post("/embed", dependencies=[authorized], summary="The library's items: texts or [instruction, text] pairs")
    async def embed(body: EmbedRequest, request: Request) -> JSONResponse:
        served = state.served(body.model)
        if not body.inputs:
            raise APIError(400, "inputs must not be empty", param="inputs")
        if len(body.inputs) > settings.max_client_batch:
            raise APIError(400, f"at most {settings.max_client_batch} inputs per request", param="inputs")
        items = [parse_item(index, item) for index, item in enumerate(body.inputs)]
        vectors, tokens = await _embed(state, served, items, request)
        vectors = postprocess(vectors, truncate_dim=body.truncate_dim, normalize=body.normalize)
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        return JSONResponse({"model": served.name, "embeddings": vectors.numpy().tolist(), "usage": usage})

    return app


async def _embed(state: ServerState, served: Served, items: list[Item], request: Request) -> tuple[torch.Tensor, int]:
    """Tokenize on a worker thread, queue for the batcher, and wait for the vectors (or the client to leave)."""
    count = len(items)
    if state.in_flight + count > state.settings.max_concurrent_inputs:
        raise APIError(
            429,
            f"the server is at its limit of {state.settings.max_concurrent_inputs} inputs in flight; retry shortly",
            "rate_limit_error",
            code="rate_limit_exceeded",
            headers={"Retry-After": "1"},
        )
    state.in_flight += count
    try:
        started = time.perf_counter()
        if count <= INLINE_TOKENIZE_INPUTS and sum(len(item.text) for item in items) <= INLINE_TOKENIZE_CHARS:
            tokenized = served.tokenize(items)  # microseconds: cheaper here than a hop to a worker thread
        else:
            tokenized = await run_in_threadpool(served.tokenize, items)
        state.metrics.tokenize_seconds.observe(time.perf_counter() - started)
        request.state.inputs, request.state.tokens = count, sum(tokenized.token_counts)
        job = served.batcher.submit(tokenized)
        vectors = await _result_unless_client_leaves(request, job.future)
    finally:
        state.in_flight -= count
    return vectors, request.state.tokens


async def _result_unless_client_leaves(request: Request, future) -> torch.Tensor:
    waiter = asyncio.wrap_future(future)
    watcher = asyncio.ensure_future(_disconnected(request))
    try:
        done, _ = await asyncio.wait({waiter, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
    if waiter in done:
        return waiter.result()
    waiter.cancel()  # cancels the job too, if the batcher has not started it: it is dropped unrun
    raise ClientGone


async def _disconnected(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass


def _texts(value: object, max_client_batch: int) -> list[str]:
    if isinstance(value, str):
        texts = [value]
    elif isinstance(value, list) and value and all(isinstance(item, (int, list)) for item in value):
        raise APIError(400, TOKEN_IDS_REFUSED, param="input", code="token_ids_not_supported")
    else:
        texts = list(value)
    if not texts:
        raise APIError(400, "input must not be empty", param="input")
    if len(texts) > max_client_batch:
        raise APIError(
            400, f"input has {len(texts)} items; at most {max_client_batch} per request: split it", param="input"
        )
    for index, text in enumerate(texts):
        if not text.strip():
            where = "input" if isinstance(value, str) else f"input[{index}]"
            raise APIError(400, f"{where} is an empty string; every input needs text", param=where)
    return texts


def _instructions(body: EmbeddingRequest, texts: list[str], settings: ServerSettings) -> list[str | None]:
    given = body.instruction if body.instruction is not None else settings.default_instruction
    if isinstance(given, list):
        if len(given) != len(texts):
            raise APIError(
                400,
                f"instruction is a list of {len(given)}; give one string for every input, or one per input ({len(texts)})",
                param="instruction",
            )
        return list(given)
    return [given] * len(texts)


def _floats(row: np.ndarray) -> list[float]:
    return row.tolist()


def _base64(row: np.ndarray) -> str:
    return base64.b64encode(row.astype("<f4").tobytes()).decode("ascii")


def _loader(settings: ServerSettings) -> Callable[[ServedModel], INSTRUCTOR]:
    def load(served: ServedModel) -> INSTRUCTOR:
        return settings.spec(served).load()

    return load


def _authorizer(api_key: str | None):
    expected = api_key.encode() if api_key else None

    async def check(request: Request) -> None:
        if expected is None:
            return
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
            raise APIError(401, "missing or wrong API key (Authorization: Bearer KEY)", code="invalid_api_key")

    return check


def _add_error_handlers(app: FastAPI, state: ServerState) -> None:
    def failed(request: Request, error_type: str) -> None:
        state.metrics.failures.labels(request.url.path, error_type).inc()

    @app.exception_handler(APIError)
    async def api_error(request: Request, exc: APIError) -> JSONResponse:
        failed(request, exc.code or exc.type)
        return exc.response()

    @app.exception_handler(InputError)
    async def input_error(request: Request, exc: InputError) -> JSONResponse:
        failed(request, "invalid_input")
        param = exc.param
        if exc.index is not None:
            param = f"{'inputs' if request.url.path == '/embed' else 'input'}[{exc.index}]"
        return APIError(400, str(exc), param=param).response()

    @app.exception_handler(RequestValidationError)
    async def invalid_body(request: Request, exc: RequestValidationError) -> JSONResponse:
        failed(request, "invalid_request")
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        location = [str(part) for part in first.get("loc", ()) if part != "body"]
        param = location[0] + "".join(f"[{part}]" for part in location[1:]) if location else None
        message = f"{param}: {first['msg']}" if param else str(first["msg"])
        return APIError(400, message, param=param).response()

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        failed(request, f"http_{exc.status_code}")
        return APIError(exc.status_code, str(exc.detail), headers=exc.headers).response()

    @app.exception_handler(ClientGone)
    async def client_gone(request: Request, exc: ClientGone) -> Response:
        failed(request, "client_disconnected")
        return Response(status_code=499)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        failed(request, "internal")
        logger.exception("request %s failed", getattr(request.state, "request_id", "?"))
        message = f"internal error (request id {getattr(request.state, 'request_id', '?')}); see the server's log"
        return APIError(500, message, "server_error").response()


class RequestContext:
    """ASGI middleware: a request id (``X-Request-ID``, echoed), the payload limit, one JSON log line and the
    request metrics per request. Bodies and keys are never logged."""

    def __init__(self, app, state: ServerState):
        self.app, self.state = app, state

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        request_id = headers.get(b"x-request-id", b"").decode("latin-1")[:64] or uuid.uuid4().hex[:16]
        scope.setdefault("state", {})["request_id"] = request_id
        limit, started, status = self.state.settings.payload_limit, time.perf_counter(), [500]
        received = 0

        async def limited_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise HTTPException(413, f"request body over this server's limit of {limit} bytes")
            return message

        async def send_with_id(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            declared = int(headers.get(b"content-length", b"0") or 0)
        except ValueError:
            declared = 0
        try:
            if declared > limit:
                body = error_body(
                    f"request body of {declared} bytes is over this server's limit of {limit}", "invalid_request_error"
                )
                await JSONResponse(body, status_code=413)(scope, receive, send_with_id)
            else:
                await self.app(scope, limited_receive, send_with_id)
        finally:
            self._record(scope, request_id, status[0], time.perf_counter() - started)

    def _record(self, scope, request_id: str, status: int, seconds: float) -> None:
        details = scope.get("state", {})
        path = scope["path"] if scope["path"] in ROUTES else "other"  # bounded label values
        metrics = self.state.metrics
        metrics.requests.labels(path, str(status)).inc()
        metrics.request_seconds.labels(path).observe(seconds)
        line = {"request_id": request_id, "method": scope["method"], "path": path, "status": status}
        line |= {
            "duration_ms": round(seconds * 1000, 2),
            "inputs": details.get("inputs"),
            "tokens": details.get("tokens"),
        }
        logger.info(json.dumps(line))
