"""Prometheus metrics of one server (its own registry, so several apps in one process never collide)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_SIZES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
_TOKENS = (64, 256, 1024, 2048, 4096, 8192, 16384, 32768, 65536)

# Every path the server answers; a metric's route label is one of these or "other", so no client can make a
# new series by asking for a new URL.
ROUTES = (
    "/v1/embeddings",
    "/embeddings",
    "/embed",
    "/v1/models",
    "/models",
    "/info",
    "/health",
    "/metrics",
    "/docs",
    "/openapi.json",
)


def route_label(path: str) -> str:
    return path if path in ROUTES else "other"


class Metrics:
    """Request counts and outcomes, durations of each stage, queue size, and what each batch held."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("instructor_embed_requests", "Requests answered", ["route", "status"], registry=r)
        self.failures = Counter(
            "instructor_embed_request_failures",
            "Requests answered with an error, by error type",
            ["route", "type"],
            registry=r,
        )
        self.request_seconds = Histogram(
            "instructor_embed_request_duration_seconds",
            "Time to answer a request",
            ["route"],
            buckets=_SECONDS,
            registry=r,
        )
        self.tokenize_seconds = Histogram(
            "instructor_embed_tokenization_duration_seconds",
            "Time to tokenize a request's inputs",
            buckets=_SECONDS,
            registry=r,
        )
        self.queue_seconds = Histogram(
            "instructor_embed_queue_duration_seconds",
            "Time a request's inputs waited for a batch",
            buckets=_SECONDS,
            registry=r,
        )
        self.inference_seconds = Histogram(
            "instructor_embed_inference_duration_seconds",
            "Time of one batch's forward pass",
            ["model"],
            buckets=_SECONDS,
            registry=r,
        )
        self.in_flight = Gauge(
            "instructor_embed_inputs_in_flight", "Inputs admitted whose batch has not finished", registry=r
        )
        self.queue_size = Gauge("instructor_embed_queue_size", "Inputs waiting for a batch", ["model"], registry=r)
        self.batch_size = Histogram(
            "instructor_embed_batch_size", "Inputs per forward pass", ["model"], buckets=_SIZES, registry=r
        )
        self.batch_tokens = Histogram(
            "instructor_embed_batch_tokens",
            "Tokens per forward pass, padding included",
            ["model"],
            buckets=_TOKENS,
            registry=r,
        )
        self.real_tokens = Counter(
            "instructor_embed_batch_real_tokens",
            "Tokens of the inputs run (without padding); padded / real is the padding ratio",
            ["model"],
            registry=r,
        )
        self.padded_tokens = Counter(
            "instructor_embed_batch_padded_tokens", "Tokens run, padding included", ["model"], registry=r
        )
        self.batch_requests = Histogram(
            "instructor_embed_batch_requests",
            "Requests whose inputs shared a forward pass",
            ["model"],
            buckets=_SIZES,
            registry=r,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
