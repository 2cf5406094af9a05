"""The ASGI layer around every request: its id, the body's size and time limits, the API key on paths the app
does not know (so an anonymous client gets 401, not 404, and learns nothing), one JSON log line and the metrics.
Bodies and keys are never logged."""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
import uuid

from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from .metrics import ROUTES, route_label
from .schema import error_body
from .state import ServerState

logger = logging.getLogger("instructor_embed.server")

UNAUTHORIZED = "missing or wrong API key (Authorization: Bearer KEY)"


def key_matches(authorization: str, expected: bytes) -> bool:
    """Whether an ``Authorization`` header carries the key (a timing-safe comparison)."""
    scheme, _, given = authorization.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), expected)


class RequestContext:
    """ASGI middleware: request id (``X-Request-ID``, echoed), payload limit (declared and streamed), body
    deadline (``body_timeout_s`` from the first byte of the request), API key on unknown paths, log and metrics."""

    def __init__(self, app, state: ServerState):
        self.app, self.state = app, state
        key = state.settings.api_key
        self.expected = key.encode() if key else None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        request_id = headers.get(b"x-request-id", b"").decode("latin-1")[:64] or uuid.uuid4().hex[:16]
        scope.setdefault("state", {})["request_id"] = request_id
        settings = self.state.settings
        limit, started, status = settings.payload_limit, time.perf_counter(), [500]
        body_deadline = time.monotonic() + settings.body_timeout_s
        received, body_done = 0, False

        async def limited_receive():
            nonlocal received, body_done
            if body_done:
                return await receive()  # after the body: only the disconnect, which may come whenever
            try:
                message = await asyncio.wait_for(receive(), max(body_deadline - time.monotonic(), 0.001))
            except TimeoutError:
                raise HTTPException(
                    408, f"the request body did not arrive within {settings.body_timeout_s:g} s"
                ) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                body_done = not message.get("more_body", False)
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
            refusal = self._refusal(scope["path"], headers, declared, limit)
            if refusal is not None:
                await refusal(scope, receive, send_with_id)
            else:
                await self.app(scope, limited_receive, send_with_id)
        finally:
            self._record(scope, request_id, status[0], time.perf_counter() - started)

    def _refusal(self, path: str, headers: dict, declared: int, limit: int) -> JSONResponse | None:
        if self.expected is not None and path not in ROUTES:
            if not key_matches(headers.get(b"authorization", b"").decode("latin-1"), self.expected):
                self.state.metrics.failures.labels("other", "invalid_api_key").inc()
                return JSONResponse(error_body(UNAUTHORIZED, "invalid_request_error", code="invalid_api_key"), 401)
        if declared > limit:
            message = f"request body of {declared} bytes is over this server's limit of {limit}"
            return JSONResponse(error_body(message, "invalid_request_error"), status_code=413)
        return None

    def _record(self, scope, request_id: str, status: int, seconds: float) -> None:
        details = scope.get("state", {})
        path = route_label(scope["path"])
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
