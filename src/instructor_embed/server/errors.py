"""Every error the server answers, in OpenAI's shape (``{"error": {"message", "type", "param", "code"}}``, which
its clients show), and the mapping from exceptions to those answers. Internals never reach a client."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from ..errors import InputError
from .batcher import BatcherDied, JobAbandoned
from .metrics import Metrics, route_label
from .schema import EmbeddingRequest, EmbedRequest, error_body

logger = logging.getLogger("instructor_embed.server")

_FIELDS = set(EmbeddingRequest.model_fields) | set(EmbedRequest.model_fields)


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


def unavailable(message: str, code: str) -> APIError:
    """A 503 that clients retry after a second (``Retry-After``), as OpenAI's clients do."""
    return APIError(503, message, "server_error", code=code, headers={"Retry-After": "1"})


def add_error_handlers(app: FastAPI, metrics: Metrics) -> None:
    def failed(request: Request, error_type: str) -> None:
        metrics.failures.labels(route_label(request.url.path), error_type).inc()

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
        message, param = _invalid_body(exc.errors())
        return APIError(400, message, param=param).response()

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        failed(request, f"http_{exc.status_code}")
        return APIError(exc.status_code, str(exc.detail), headers=exc.headers).response()

    @app.exception_handler(BatcherDied)
    async def batcher_died(request: Request, exc: BatcherDied) -> JSONResponse:
        failed(request, "batcher_died")
        return unavailable(
            f"the model's worker failed while this request waited ({exc}); retry", "batcher_died"
        ).response()

    @app.exception_handler(JobAbandoned)
    async def abandoned(request: Request, exc: JobAbandoned) -> JSONResponse:
        failed(request, "timeout")
        return unavailable(f"the request was not finished in time ({exc}); retry", "timeout").response()

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


def _invalid_body(errors) -> tuple[str, str | None]:
    """A validation error as (message, param): ``input[3]``, not pydantic's ``body.input.list[str].3``."""
    first = errors[0] if errors else {"loc": (), "msg": "invalid request", "type": ""}
    location = list(first.get("loc", ()))
    if first.get("type") == "json_invalid":
        at = next((part for part in location if isinstance(part, int)), None)
        where = f" at character {at}" if at is not None else ""
        return f"the body is not valid JSON{where}: {first.get('ctx', {}).get('error', first['msg'])}", None
    # Keep field names and list positions; drop "body" and the union branches pydantic names ("list[str]").
    parts = [part for part in location[1:] if isinstance(part, int) or part in _FIELDS]
    parts = [location[0]] + parts if location and location[0] != "body" else parts
    names = [str(part) for part in parts]
    param = names[0] + "".join(f"[{part}]" for part in names[1:]) if names else None
    return (f"{param}: {first['msg']}" if param else str(first["msg"])), param
