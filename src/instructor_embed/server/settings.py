"""The server's settings: one frozen dataclass, filled by the CLI (``instructor-embed serve``) or by code."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError
from ..spec import ModelSpec


@dataclass(frozen=True)
class ServedModel:
    """A model the server loads, and the name requests choose it by (their ``model`` field)."""

    name: str
    path: str

    @classmethod
    def parse(cls, option: str) -> ServedModel:
        """``NAME=PATH_OR_ID``, or ``PATH_OR_ID`` alone: named by a Hub id as given, or by a directory's name."""
        name, separator, path = option.partition("=")
        if separator:
            if not name or not path:
                raise InputError(f"--model {option!r}: expected NAME=PATH_OR_ID", param="model")
            return cls(name, path)
        local = Path(option).expanduser()
        return cls(local.resolve().name if local.is_dir() else option, option)


# Measured on 2 CPU cores (benchmarks/serve_bench.py, 128 clients, MS MARCO passages): 4096 tokens per pass
# gave 42 texts/s where 16384 gave 21: large CPU batches of long texts are memory-bound. GPUs want large ones.
CPU_BATCH_TOKENS, GPU_BATCH_TOKENS = 4096, 16384


@dataclass(frozen=True)
class ServerSettings:
    """Everything ``serve`` needs; defaults are the CLI's."""

    models: tuple[ServedModel, ...]
    host: str = "127.0.0.1"
    port: int = 8000
    api_key: str | None = None  # bearer key required on every route but /health and /metrics
    device: str | None = None
    dtype: str | None = None
    backend: str = "torch"
    quantize: str | None = None
    max_batch_tokens: int | None = None  # tokens per forward pass, padding included (None: 4096 on CPU, 16384 on GPU)
    max_batch_size: int = 128  # inputs per forward pass
    max_wait_ms: float = 0.0  # how long an idle model waits for more inputs (inputs arriving while it runs join anyway)
    max_concurrent_inputs: int = 4096  # inputs accepted and not yet answered; beyond: 429
    max_client_batch: int = 2048  # inputs per request
    max_input_tokens: int | None = None  # tokens per input (default: each model's max_seq_length)
    truncate: bool = False  # cut longer inputs to max_input_tokens instead of refusing them
    payload_limit: int = 16 * 1024 * 1024  # request body bytes
    max_connections: int = 1024  # open connections and requests at once (uvicorn's limit_concurrency); beyond: 503
    request_timeout_s: float = 120.0  # from admission to answer; beyond: 503 "timeout", the job dropped
    body_timeout_s: float = 30.0  # the whole request body must arrive within this; beyond: 408
    keep_alive_s: int = 5  # an idle keep-alive connection is closed after this (uvicorn's timeout_keep_alive)
    threads: int | None = None  # torch intra-op threads for the models (None: torch's default, all cores)
    tokenizer_threads: int = field(default_factory=lambda: min(4, os.cpu_count() or 1))  # each with its tokenizer
    default_instruction: str | None = None  # for requests that give none

    def spec(self, model: ServedModel) -> ModelSpec:
        """How a served model loads: the server's model options, the same for every model it serves."""
        return ModelSpec(model.path, device=self.device, dtype=self.dtype, backend=self.backend, quantize=self.quantize)

    def batch_tokens(self, device_type: str) -> int:
        """``max_batch_tokens``, or the default for the device a model runs on."""
        return self.max_batch_tokens or (GPU_BATCH_TOKENS if device_type == "cuda" else CPU_BATCH_TOKENS)

    def validate(self) -> None:
        if not self.models:
            raise InputError("serve needs at least one --model", param="model")
        names = [model.name for model in self.models]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise InputError(f"two models are named {', '.join(repeated)}; name them with --model NAME=PATH")
        for name in (
            "max_batch_tokens",
            "max_batch_size",
            "max_concurrent_inputs",
            "max_client_batch",
            "payload_limit",
            "tokenizer_threads",
            "threads",
            "max_connections",
            "keep_alive_s",
        ):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise InputError(f"--{name.replace('_', '-')} must be at least 1", param=name)
        if self.max_input_tokens is not None and self.max_input_tokens < 1:
            raise InputError("--max-input-tokens must be at least 1", param="max_input_tokens")
        for name in ("request_timeout_s", "body_timeout_s"):
            if not getattr(self, name) > 0:
                raise InputError(f"--{name.removesuffix('_s').replace('_', '-')} must be positive seconds", param=name)
        if self.max_wait_ms < 0:
            raise InputError("--max-wait-ms must not be negative", param="max_wait_ms")
        if self.max_client_batch > self.max_concurrent_inputs:
            raise InputError(
                "--max-client-batch must not exceed --max-concurrent-inputs (such a request could never run)",
                param="max_client_batch",
            )
        if not 0 <= self.port < 65536:
            raise InputError(f"--port must be 0..65535, got {self.port}", param="port")
