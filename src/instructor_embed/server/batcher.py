"""Dynamic batching: the inputs of concurrent requests share token-budgeted forward passes on one worker thread.

A request's inputs, already tokenized, become a :class:`Job`. The worker takes queued jobs while they fit in one
round (``max_batch_tokens`` tokens and ``max_batch_size`` inputs; a larger job goes alone), waiting at most
``max_wait_ms`` after the first for others to join, then plans batches over the round's inputs by token length
and runs the engine's ``forward`` on each. Vectors are exactly what ``INSTRUCTOR.encode`` gives for the same
items (same steps, same masking). A job whose client went away is dropped before it runs; a batch that fails
fails only the jobs with inputs in it. The event loop never runs a forward pass.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field

import torch

from ..encode import Engine, plan_batches
from ..tokenization import Tokenized
from .metrics import Metrics

logger = logging.getLogger(__name__)


@dataclass(eq=False)
class Job:
    """One request's inputs; ``future`` gets their ``(n, dim)`` float32 vectors (CPU) or the batch's error."""

    tokenized: Tokenized
    future: Future = field(default_factory=Future)
    queued_at: float = field(default_factory=time.perf_counter)

    @property
    def tokens(self) -> int:
        return sum(self.tokenized.token_counts)


class Batcher:
    """Runs the jobs of one model on a worker thread; ``submit`` from any thread, ``stop`` drains the queue."""

    def __init__(
        self,
        engine: Engine,
        name: str,
        metrics: Metrics,
        *,
        max_batch_tokens: int,
        max_batch_size: int,
        max_wait_ms: float,
    ):
        self.engine, self.name, self.metrics = engine, name, metrics
        self.max_batch_tokens, self.max_batch_size, self.max_wait = max_batch_tokens, max_batch_size, max_wait_ms / 1000
        self._queue: deque[Job] = deque()
        self._condition = threading.Condition()
        self._running = False
        self._thread = threading.Thread(target=self._work, name=f"batcher-{name}", daemon=True)

    def start(self) -> None:
        self._running = True
        self._thread.start()

    def stop(self) -> None:
        """Finish every queued job, then end the worker."""
        with self._condition:
            self._running = False
            self._condition.notify()
        self._thread.join()

    def submit(self, tokenized: Tokenized) -> Job:
        job = Job(tokenized)
        if len(tokenized) == 0:
            job.future.set_result(torch.zeros((0, self.engine.dimension)))
            return job
        with self._condition:
            if not self._running:
                raise RuntimeError("the batcher is stopped")
            self._queue.append(job)
            self.metrics.queue_size.labels(self.name).inc(len(tokenized))
            self._condition.notify()
        return job

    def _work(self) -> None:
        while True:
            jobs = self._next_round()
            if jobs is None:
                return
            # A job whose future was cancelled (its client went away) is dropped here, before it runs.
            live = [job for job in jobs if job.future.set_running_or_notify_cancel()]
            if live:
                self._run(live)

    def _next_round(self) -> list[Job] | None:
        """Queued jobs for one round, or None once stopped with nothing left."""
        with self._condition:
            while not self._queue:
                if not self._running:
                    return None
                self._condition.wait()
            deadline = self._queue[0].queued_at + self.max_wait
            while self._running and not self._round_is_full() and (left := deadline - time.perf_counter()) > 0:
                self._condition.wait(left)
            jobs, tokens, inputs = [], 0, 0
            while self._queue:
                job = self._queue[0]
                fits = (
                    tokens + job.tokens <= self.max_batch_tokens and inputs + len(job.tokenized) <= self.max_batch_size
                )
                if jobs and not fits:
                    break
                jobs.append(self._queue.popleft())
                tokens, inputs = tokens + job.tokens, inputs + len(job.tokenized)
            self.metrics.queue_size.labels(self.name).dec(inputs)
            return jobs

    def _round_is_full(self) -> bool:
        tokens = sum(job.tokens for job in self._queue)
        inputs = sum(len(job.tokenized) for job in self._queue)
        return tokens >= self.max_batch_tokens or inputs >= self.max_batch_size

    def _run(self, jobs: list[Job]) -> None:
        started = time.perf_counter()
        for job in jobs:
            self.metrics.queue_seconds.observe(started - job.queued_at)
        combined = Tokenized.concat(job.tokenized for job in jobs)
        owners = [number for number, job in enumerate(jobs) for _ in range(len(job.tokenized))]
        result = torch.empty((len(combined), self.engine.dimension), dtype=torch.float32)
        failures: dict[int, BaseException] = {}
        for batch in plan_batches(combined.token_counts, self.max_batch_size, self.max_batch_tokens):
            batch_started = time.perf_counter()
            try:
                vectors = self.engine.forward(combined.take(batch))["sentence_embedding"]
                result[torch.tensor(batch)] = vectors.to("cpu", torch.float32)
            except Exception as exc:  # fails the requests with inputs in this batch, and only those
                logger.exception("batch of %d inputs failed", len(batch))
                failures.update((owners[row], exc) for row in batch)
                continue
            counts = [combined.token_counts[row] for row in batch]
            self.metrics.inference_seconds.labels(self.name).observe(time.perf_counter() - batch_started)
            self.metrics.batch_size.labels(self.name).observe(len(batch))
            self.metrics.batch_tokens.labels(self.name).observe(len(batch) * max(counts))
            self.metrics.batch_requests.labels(self.name).observe(len({owners[row] for row in batch}))
        start = 0
        for number, job in enumerate(jobs):
            end = start + len(job.tokenized)
            if number in failures:
                job.future.set_exception(failures[number])
            else:
                job.future.set_result(result[start:end])
            start = end
