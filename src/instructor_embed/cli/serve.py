"""``instructor-embed serve``: the OpenAI-compatible server."""

from __future__ import annotations

import argparse

from ..errors import InstructorEmbedError
from .options import add_model_options


def add_parser(commands) -> None:
    from ..server.settings import ServerSettings  # no FastAPI here: the parser stays light

    defaults = ServerSettings(models=())
    serve = commands.add_parser(
        "serve",
        help="an OpenAI-compatible embedding server with per-request instructions",
        description="Serve models over HTTP: POST /v1/embeddings (OpenAI's API; 'instruction' extension), "
        "POST /embed ([instruction, text] items), GET /v1/models, /health, /info, /metrics, /docs. Inputs of "
        "concurrent requests share token-budgeted batches. Needs the 'server' extra.",
        epilog="example: instructor-embed serve --model hkunlp/instructor-large --default-instruction "
        '"Represent the document for retrieval: "',
    )
    serve.add_argument(
        "--model",
        action="append",
        required=True,
        help="PATH_OR_ID or NAME=PATH_OR_ID (repeat to serve several; requests choose by name) (required)",
    )
    serve.add_argument("--host", default=defaults.host, help=f"address to bind (default: {defaults.host})")
    serve.add_argument("--port", type=int, default=defaults.port, help=f"port (default: {defaults.port})")
    serve.add_argument(
        "--api-key", help="require 'Authorization: Bearer KEY' (default: $INSTRUCTOR_EMBED_API_KEY, else none)"
    )
    add_model_options(serve)
    serve.add_argument(
        "--max-batch-tokens",
        type=int,
        help="tokens per forward pass, padding included (default: 4096 on CPU, 16384 on GPU)",
    )
    for name, help in [
        ("max_batch_size", "inputs per forward pass"),
        ("max_concurrent_inputs", "inputs in flight before requests get 429"),
        ("max_client_batch", "inputs per request"),
        ("payload_limit", "request body bytes"),
    ]:
        serve.add_argument(
            f"--{name.replace('_', '-')}",
            type=int,
            default=getattr(defaults, name),
            help=f"{help} (default: {getattr(defaults, name)})",
        )
    serve.add_argument(
        "--max-wait-ms",
        type=float,
        default=defaults.max_wait_ms,
        help="how long an idle model waits for more requests' inputs before it runs; inputs that arrive while a "
        f"batch runs join the next one anyway (default: {defaults.max_wait_ms:g})",
    )
    serve.add_argument(
        "--max-connections",
        type=int,
        default=defaults.max_connections,
        help=f"open connections (and requests) at once; beyond, new ones get 503 (default: {defaults.max_connections})",
    )
    for name, help in [
        ("request_timeout_s", "seconds from a request's admission to its answer; beyond: 503 timeout"),
        ("body_timeout_s", "seconds for a request body to arrive; beyond: 408"),
    ]:
        flag = name.removesuffix("_s").replace("_", "-")
        serve.add_argument(
            f"--{flag}",
            type=float,
            default=getattr(defaults, name),
            help=f"{help} (default: {getattr(defaults, name):g})",
        )
    serve.add_argument(
        "--keep-alive",
        type=int,
        default=defaults.keep_alive_s,
        help=f"seconds an idle keep-alive connection stays open (default: {defaults.keep_alive_s})",
    )
    serve.add_argument(
        "--threads",
        type=int,
        help="torch threads for the models' matrix products (default: torch's, all cores); on a machine shared with "
        "other work, OMP_WAIT_POLICY=PASSIVE in serve's environment spends less CPU per text (README: Serving)",
    )
    serve.add_argument(
        "--tokenizer-threads",
        type=int,
        default=defaults.tokenizer_threads,
        help="threads that tokenize requests, each with its own tokenizer (default: up to 4, one per core)",
    )
    serve.add_argument("--max-input-tokens", type=int, help="tokens per input (default: the model's max_seq_length)")
    serve.add_argument("--truncate", action="store_true", help="cut longer inputs instead of refusing them")
    serve.add_argument("--default-instruction", help="instruction for requests that give none (default: none)")
    serve.add_argument("--quiet", action="store_true", help="log warnings and errors only")


def run(args: argparse.Namespace) -> int:
    import logging
    import os

    from ..dependencies import require
    from ..inputs import check_device
    from ..server.settings import ServedModel, ServerSettings

    uvicorn = require("server", "uvicorn", "instructor-embed serve")
    require("server", "fastapi", "instructor-embed serve")
    require("server", "prometheus_client", "instructor-embed serve")
    from ..server.app import create_app

    if args.device:
        check_device(args.device)
    settings = ServerSettings(
        models=tuple(ServedModel.parse(option) for option in args.model),
        host=args.host,
        port=args.port,
        api_key=args.api_key or os.environ.get("INSTRUCTOR_EMBED_API_KEY") or None,
        device=args.device,
        dtype=args.dtype,
        backend=args.backend,
        quantize=args.quantize,
        max_batch_tokens=args.max_batch_tokens,
        max_batch_size=args.max_batch_size,
        max_wait_ms=args.max_wait_ms,
        max_concurrent_inputs=args.max_concurrent_inputs,
        max_client_batch=args.max_client_batch,
        max_input_tokens=args.max_input_tokens,
        truncate=args.truncate,
        payload_limit=args.payload_limit,
        max_connections=args.max_connections,
        request_timeout_s=args.request_timeout,
        body_timeout_s=args.body_timeout,
        keep_alive_s=args.keep_alive,
        tokenizer_threads=args.tokenizer_threads,
        threads=args.threads,
        default_instruction=args.default_instruction,
    )
    app = create_app(settings)
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    server_logger = logging.getLogger("instructor_embed.server")
    server_logger.addHandler(handler)
    server_logger.setLevel(logging.WARNING if args.quiet else logging.INFO)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level="warning" if args.quiet else "info",
        access_log=False,  # our own log line per request carries the request id and timings
        timeout_graceful_shutdown=60,
        timeout_keep_alive=settings.keep_alive_s,
        limit_concurrency=settings.max_connections,
    )
    server = uvicorn.Server(config)
    state = app.state.server
    _stop_when_it_cannot_serve(server, state)
    server.run()
    if state.load_error:
        raise ModelLoadFailed(state.load_error)
    if state.failure:
        raise ServerFailed(f"{state.failure}; exiting so that a supervisor restarts the server")
    return 0


def _stop_when_it_cannot_serve(server, state) -> None:
    """A model that cannot load, or a batcher that died more often than it may restart, ends the server (after
    /health has said so for a moment) rather than leaving it up unusable: a supervisor restarts it."""
    import threading
    import time

    def watch() -> None:
        while not server.should_exit:
            if state.failure:
                time.sleep(1.0)  # let /health report it and in-flight answers go out
                server.should_exit = True
                return
            time.sleep(0.2)

    threading.Thread(target=watch, name="failure-watch", daemon=True).start()


class ModelLoadFailed(InstructorEmbedError):
    """serve could not load a model."""


class ServerFailed(InstructorEmbedError):
    """serve stopped because it could no longer serve (a model's worker kept dying)."""
