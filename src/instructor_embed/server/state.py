"""What the routes share: the settings, the models once loaded (each with its batcher and tokenizers), admission
of inputs, and the server's health."""

from __future__ import annotations

import asyncio
import json
import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from ..batching import batch_overhead
from ..errors import InputError
from ..model import INSTRUCTOR
from ..tokenization import InstructionTokenizer, Item, Tokenized
from .batcher import Batcher
from .errors import APIError
from .metrics import Metrics
from .settings import ServedModel, ServerSettings

logger = logging.getLogger("instructor_embed.server")


@dataclass
class Served:
    """A loaded model, its batcher, its input limit, and one tokenizer per tokenizing thread."""

    name: str
    path: str
    model: INSTRUCTOR
    batcher: Batcher
    max_input_tokens: int
    truncate: bool
    tokenizers: queue.SimpleQueue  # of InstructionTokenizer clones: a thread takes one, so none shares a lock

    def tokenize(self, items: list[Item]) -> Tokenized:
        """Tokenize on the calling thread with a tokenizer of its own; an input over ``max_input_tokens`` is
        refused unless truncation is allowed."""
        tokenizer: InstructionTokenizer = self.tokenizers.get()
        try:
            if self.truncate:
                return tokenizer.tokenize(items, max_length=self.max_input_tokens)
            tokenized = tokenizer.tokenize(items, max_length=self.max_input_tokens + 1)  # one more: who is too long
        finally:
            self.tokenizers.put(tokenizer)
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
    """Settings, metrics, the served models, the tokenizing threads, and the inputs in flight."""

    def __init__(self, settings: ServerSettings, load: Callable[[ServedModel], INSTRUCTOR]):
        self.settings, self.load = settings, load
        self.metrics = Metrics()
        self.models: dict[str, Served] = {}
        self.ready = threading.Event()
        self.load_error: str | None = None
        self.tokenizing = ThreadPoolExecutor(settings.tokenizer_threads, thread_name_prefix="tokenize")
        self._in_flight = 0  # inputs admitted whose job has not finished (not: whose client has not left)
        self._admission = threading.Lock()

    def load_all(self) -> None:
        settings = self.settings
        if settings.threads:
            import torch

            torch.set_num_threads(settings.threads)  # process-wide, as torch has it
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
                    overhead=batch_overhead(model.device.type),
                )
                limit = min(settings.max_input_tokens or model.max_seq_length, model.max_seq_length)
                tokenizers: queue.SimpleQueue = queue.SimpleQueue()
                tokenizers.put(model.engine.tokenizer)
                for _ in range(settings.tokenizer_threads - 1):
                    tokenizers.put(model.engine.tokenizer.clone())
                served = Served(spec.name, spec.path, model, batcher, limit, settings.truncate, tokenizers)
                self.models[spec.name] = served
                batcher.start()
                logger.info(json.dumps({"event": "model_loaded", "model": spec.name, "repr": repr(model)}))
            self.ready.set()
        except Exception as exc:  # reported by /health and the log; serve exits
            self.load_error = f"{type(exc).__name__}: {exc}"
            logger.error(json.dumps({"event": "load_failed", "error": self.load_error}))

    def close(self) -> None:
        for served in self.models.values():
            served.batcher.stop()
        self.tokenizing.shutdown(wait=False, cancel_futures=True)

    @property
    def failure(self) -> str | None:
        """Why the server cannot serve (a model failed to load, a batcher is down), or None."""
        if self.load_error:
            return self.load_error
        return next((served.batcher.down for served in self.models.values() if served.batcher.down), None)

    def health(self) -> tuple[int, dict]:
        failure = self.failure
        if failure:
            return 503, {"status": "failed", "error": failure}
        if not self.ready.is_set():
            return 503, {"status": "loading", "error": None}
        return 200, {"status": "ok", "models": list(self.models)}

    def require_ready(self) -> None:
        failure = self.failure
        if failure:
            raise APIError(503, f"the server cannot serve: {failure}", "server_error", code="unavailable")
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

    async def tokenize(self, served: Served, items: list[Item]) -> Tokenized:
        """Tokenize on a tokenizing thread: the event loop never waits on a tokenizer."""
        return await asyncio.get_running_loop().run_in_executor(self.tokenizing, served.tokenize, items)

    # Admission: inputs count from admission until their job has finished, whether or not the client waits.

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def admit(self, count: int) -> None:
        limit = self.settings.max_concurrent_inputs
        with self._admission:
            if self._in_flight + count > limit:
                raise APIError(
                    429,
                    f"the server is at its limit of {limit} inputs in flight; retry shortly",
                    "rate_limit_error",
                    code="rate_limit_exceeded",
                    headers={"Retry-After": "1"},
                )
            self._in_flight += count
            self.metrics.in_flight.set(self._in_flight)

    def release(self, count: int) -> None:
        with self._admission:
            self._in_flight -= count
            self.metrics.in_flight.set(self._in_flight)
