"""The FastAPI app: OpenAI-compatible ``/v1/embeddings``, the native ``/embed``, health, info and metrics.

``create_app(settings)`` wires the parts together: :mod:`.state` (models, tokenizers, admission, health),
:mod:`.batcher` (the supervised model thread), :mod:`.middleware` (request id, limits, log), :mod:`.errors`
(OpenAI's error shape), :mod:`.responses` (fast JSON). Its lifespan loads the models on a thread (``/health``
answers 503 until they are ready) and, at shutdown, lets every batcher finish what it accepted.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections.abc import Callable
from contextlib import asynccontextmanager
from dataclasses import asdict
from typing import Annotated

import torch
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ..encode import postprocess
from ..inputs import parse_item
from ..model import INSTRUCTOR
from ..tokenization import Item
from .errors import APIError, ClientGone, add_error_handlers, unavailable
from .middleware import UNAUTHORIZED, RequestContext, key_matches
from .responses import embed_response, embeddings_response
from .schema import (
    EmbeddingRequest,
    EmbeddingResponse,
    EmbedRequest,
    EmbedResponse,
    Health,
    Info,
    ModelList,
    error_responses,
)
from .settings import ServedModel, ServerSettings
from .state import Served, ServerState

# The batcher thread gives up the GIL at every torch op; with Python's default 5 ms switch interval the busy
# event loop then holds it for up to 5 ms each time, and a forward pass of a hundred ops crawls.
GIL_SWITCH_INTERVAL = 0.0002

TOKEN_IDS_REFUSED = (
    "input holds token ids; this server takes text only, because token ids from another tokenizer (e.g. tiktoken's) "
    "mean nothing to this model. Send the texts. LangChain's OpenAIEmbeddings sends token ids unless created with "
    "check_embedding_ctx_length=False."
)

# Documents the key in the OpenAPI schema; the check itself is key_matches (timing-safe).
_BEARER = HTTPBearer(auto_error=False, description="the server's --api-key, when it has one")
_GET_ERRORS = error_responses(401, 503)
_POST_ERRORS = error_responses(400, 401, 404, 408, 413, 429, 503)


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
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
    )
    app.state.server = state
    app.add_middleware(RequestContext, state=state)
    add_error_handlers(app, state.metrics)
    authorized = Depends(_authorizer(settings.api_key))

    @app.get(
        "/health",
        summary="200 once every model is loaded and serving, 503 before or once it cannot serve",
        response_model=Health,
        responses={503: {"model": Health, "description": "Loading, or failed (the reason in error)"}},
    )
    async def health() -> JSONResponse:
        status, body = state.health()
        return JSONResponse(body, status_code=status)

    @app.get(
        "/metrics",
        summary="Prometheus metrics",
        response_class=Response,
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
    )
    async def metrics() -> Response:
        return Response(state.metrics.render(), media_type="text/plain; version=0.0.4")

    @app.get(
        "/v1/models",
        dependencies=[authorized],
        summary="The served models (OpenAI's shape)",
        response_model=ModelList,
        responses=_GET_ERRORS,
    )
    @app.get("/models", dependencies=[authorized], include_in_schema=False)
    async def models() -> dict:
        state.require_ready()
        data = [{"id": name, "object": "model", "created": 0, "owned_by": "instructor-embed"} for name in state.models]
        return {"object": "list", "data": data}

    @app.get(
        "/info",
        dependencies=[authorized],
        summary="Models, dimensions, limits",
        response_model=Info,
        responses=error_responses(401),
    )
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
                "batcher_restarts": served.batcher.restarts,
            }
            for served in state.models.values()
        ]
        return {"ready": state.ready.is_set(), "models": described, "limits": limits}

    @app.post(
        "/v1/embeddings",
        dependencies=[authorized],
        summary="Embeddings, as OpenAI's API, plus instruction",
        response_model=EmbeddingResponse,
        responses=_POST_ERRORS,
    )
    @app.post("/embeddings", dependencies=[authorized], include_in_schema=False)
    async def embeddings(body: EmbeddingRequest, request: Request) -> Response:
        served = state.served(body.model)
        texts = _texts(body.input, settings.max_client_batch)
        items = [
            Item(instruction, text)
            for instruction, text in zip(_instructions(body, texts, settings, served.model), texts, strict=True)
        ]
        dimension = served.model.get_sentence_embedding_dimension()
        if body.dimensions is not None and body.dimensions > dimension:
            raise APIError(400, f"dimensions must be at most {dimension} for {served.name}", param="dimensions")
        vectors, tokens = await _embed(state, served, items, request)
        if body.dimensions is not None:
            vectors = postprocess(vectors, truncate_dim=body.dimensions, normalize=True)
        return await embeddings_response(vectors.numpy(), body.encoding_format, served.name, tokens)

    @app.post(
        "/embed",
        dependencies=[authorized],
        summary="The library's items: texts or [instruction, text] pairs",
        response_model=EmbedResponse,
        responses=_POST_ERRORS,
    )
    async def embed(body: EmbedRequest, request: Request) -> Response:
        served = state.served(body.model)
        if not body.inputs:
            raise APIError(400, "inputs must not be empty", param="inputs")
        if len(body.inputs) > settings.max_client_batch:
            raise APIError(400, f"at most {settings.max_client_batch} inputs per request", param="inputs")
        items = [parse_item(index, item) for index, item in enumerate(body.inputs)]
        dimension = served.model.get_sentence_embedding_dimension()
        if body.truncate_dim is not None and body.truncate_dim > dimension:
            raise APIError(400, f"truncate_dim must be at most {dimension} for {served.name}", param="truncate_dim")
        vectors, tokens = await _embed(state, served, items, request)
        vectors = postprocess(vectors, truncate_dim=body.truncate_dim, normalize=body.normalize)
        return await embed_response(vectors.numpy(), served.name, tokens)

    return app


async def _embed(state: ServerState, served: Served, items: list[Item], request: Request) -> tuple[torch.Tensor, int]:
    """Admit, tokenize on a tokenizing thread, queue for the batcher, and wait for the vectors — until the
    request's deadline, or until the client leaves. Admitted inputs count until their job has finished."""
    count = len(items)
    deadline = time.monotonic() + state.settings.request_timeout_s
    state.admit(count)
    try:
        started = time.perf_counter()
        tokenized = await state.tokenize(served, items)
        state.metrics.tokenize_seconds.observe(time.perf_counter() - started)
        request.state.inputs, request.state.tokens = count, sum(tokenized.token_counts)
        job = served.batcher.submit(tokenized, deadline)
    except BaseException:
        state.release(count)
        raise
    job.future.add_done_callback(lambda _: state.release(count))
    vectors = await _result(request, job, deadline)
    return vectors, request.state.tokens


async def _result(request: Request, job, deadline: float) -> torch.Tensor:
    """The job's vectors; :class:`ClientGone` if the client left, a 503 ``timeout`` past the deadline. Either way
    the job is abandoned: the batcher drops it before its next batch."""
    waiter = asyncio.wrap_future(job.future)
    watcher = asyncio.ensure_future(_disconnected(request))
    try:
        done, _ = await asyncio.wait(
            {waiter, watcher}, timeout=max(deadline - time.monotonic(), 0), return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        watcher.cancel()
    if waiter in done:
        return waiter.result()
    waiter.add_done_callback(_consumed)  # its outcome comes later, to nobody: not worth a warning
    job.abandon("the client went away" if watcher in done else "the request timed out")
    if watcher in done:
        raise ClientGone
    raise unavailable(
        f"the request was not answered within {request.app.state.server.settings.request_timeout_s:g} s "
        "(the server's --request-timeout); retry, or send fewer inputs per request",
        "timeout",
    )


def _consumed(future: asyncio.Future) -> None:
    if not future.cancelled():
        future.exception()


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


def _instructions(
    body: EmbeddingRequest, texts: list[str], settings: ServerSettings, model: INSTRUCTOR
) -> list[str | None]:
    """The request's instructions; else the server's ``--default-instruction``; else the query instruction the
    model was fine-tuned with (``instructions.json`` in its folder); else none."""
    given = body.instruction if body.instruction is not None else settings.default_instruction
    trained = getattr(model, "instructions", None)
    if given is None and trained is not None and trained.default is not None:
        given = trained.default.query
    if isinstance(given, list):
        if len(given) != len(texts):
            raise APIError(
                400,
                f"instruction is a list of {len(given)}; give one string for every input, or one per input ({len(texts)})",
                param="instruction",
            )
        return list(given)
    return [given] * len(texts)


def _loader(settings: ServerSettings) -> Callable[[ServedModel], INSTRUCTOR]:
    def load(served: ServedModel) -> INSTRUCTOR:
        return settings.spec(served).load()

    return load


def _authorizer(api_key: str | None):
    expected = api_key.encode() if api_key else None

    async def check(request: Request, _: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)]) -> None:
        if expected is None:
            return
        if not key_matches(request.headers.get("authorization", ""), expected):
            raise APIError(401, UNAUTHORIZED, code="invalid_api_key")

    return check
