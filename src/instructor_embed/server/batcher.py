"""Dynamic batching, supervised: the inputs of concurrent requests share token-budgeted forward passes on one
worker thread, fairly, and a failure reaches only the requests it concerns.

A request's inputs, already tokenized, become a :class:`Job`. The worker runs one batch at a time: it plans
the inputs of every waiting job with the engine's padding-aware :func:`~instructor_embed.batching.plan_batches`
(within ``max_batch_size`` inputs and ``max_batch_tokens`` padded tokens; replanned when jobs come or go) and runs
the planned batch that holds the longest remaining input of the job served least recently. So a mixed round runs
as a few length-homogeneous batches, and a one-input request that arrives while a 2,048-input request runs gets
into the very next batch instead of waiting for the whole large job; with one job waiting the batches are exactly
``plan_batches``'s. An idle model waits at most ``max_wait_ms`` after a first job for others to join. Vectors are ``INSTRUCTOR.encode``'s for the same items (same steps, same masking).

Failures: a batch that raises fails the jobs with inputs in it, and only those. A job abandoned by its client or
past its deadline is dropped before its next batch. If the worker thread itself dies, every waiting job fails at
once with :class:`BatcherDied` and the worker is restarted, at most ``max_restarts`` times in
``restart_window_s``; beyond that the batcher stays down (``down`` says why) and refuses new jobs, so ``/health``
turns 503 and ``serve`` exits for its supervisor to restart it. The event loop never runs a forward pass.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field

import torch

from .. import faults
from ..batching import plan_batches
from ..encode import Engine
from ..tokenization import Tokenized
from .metrics import Metrics

logger = logging.getLogger(__name__)


class BatcherDied(RuntimeError):
    """The batcher's worker thread died (the reason in the message); the job never finished."""


class JobAbandoned(RuntimeError):
    """The job was dropped unfinished: its client went away, or its deadline passed."""


@dataclass(eq=False)
class Job:
    """One request's inputs; ``future`` gets their ``(n, dim)`` float32 vectors (CPU) or an error.

    ``deadline`` (``time.monotonic()`` seconds) is when the worker stops spending time on it."""

    tokenized: Tokenized
    deadline: float | None = None
    future: Future = field(default_factory=Future)
    queued_at: float = field(default_factory=time.perf_counter)
    abandoned: str | None = None  # why the job is to be dropped; set by abandon() from any thread
    served_at: float = field(default=0.0, init=False)  # when a batch last took inputs of it (0: never)
    pending: list[int] = field(init=False)  # inputs not yet run, longest first
    result: torch.Tensor | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        counts = self.tokenized.token_counts
        self.pending = sorted(range(len(counts)), key=counts.__getitem__, reverse=True)

    @property
    def tokens(self) -> int:
        return sum(self.tokenized.token_counts)

    def abandon(self, why: str = "the client went away") -> None:
        """Drop the job before its next batch (a batch already running finishes)."""
        self.abandoned = why

    def _expired(self, now: float) -> str | None:
        if self.abandoned:
            return self.abandoned
        if self.future.cancelled():
            return "it was cancelled"
        if self.deadline is not None and now >= self.deadline:
            return "its deadline passed"
        return None


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
        max_restarts: int = 3,
        restart_window_s: float = 300.0,
        overhead: float | None = None,
    ):
        self.engine, self.name, self.metrics = engine, name, metrics
        self.max_batch_tokens, self.max_batch_size, self.max_wait = max_batch_tokens, max_batch_size, max_wait_ms / 1000
        self.max_restarts, self.restart_window = max_restarts, restart_window_s
        self.overhead = overhead  # token-equivalents of one forward pass (batching.batch_overhead)
        self._queue: deque[Job] = deque()
        self._condition = threading.Condition()
        self._running = False
        self._deaths: list[float] = []
        self._down: str | None = None
        self._thread: threading.Thread | None = None
        self._plan: list[list[tuple[Job, int]]] = []  # the remaining batches planned for the jobs in _planned_for
        self._planned_for: tuple[int, ...] = ()

    @property
    def down(self) -> str | None:
        """Why the batcher stopped for good (its worker died too often), or None while it serves."""
        return self._down

    @property
    def restarts(self) -> int:
        return len(self._deaths)

    def start(self) -> None:
        self._running = True
        self._spawn()

    def stop(self) -> None:
        """Finish every queued job, then end the worker."""
        with self._condition:
            self._running = False
            self._condition.notify_all()
        thread = self._thread
        if thread is not None:
            thread.join()

    def submit(self, tokenized: Tokenized, deadline: float | None = None) -> Job:
        job = Job(tokenized, deadline)
        if len(tokenized) == 0:
            job.future.set_result(torch.zeros((0, self.engine.dimension)))
            return job
        with self._condition:
            if self._down:
                raise BatcherDied(self._down)
            if not self._running:
                raise RuntimeError("the batcher is stopped")
            self._queue.append(job)
            self.metrics.queue_size.labels(self.name).inc(len(tokenized))
            self._condition.notify()
        return job

    # The worker.

    def _spawn(self) -> None:
        self._thread = threading.Thread(target=self._work, name=f"batcher-{self.name}", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        try:
            while (batch := self._next_batch()) is not None:
                self._run(batch)
        except BaseException as exc:  # the thread is dying: nobody may be left waiting
            self._died(exc)

    def _next_batch(self) -> list[tuple[Job, list[int]]] | None:
        """The next batch, as (job, its inputs in the batch) pairs; None once stopped with nothing left."""
        with self._condition:
            while True:
                self._drop_expired()
                if self._queue:
                    break
                if not self._running:
                    return None
                self._condition.wait()
            if not any(job.result is not None for job in self._queue):  # idle: let others join the first
                deadline = self._queue[0].queued_at + self.max_wait
                while self._running and not self._enough_waiting() and (left := deadline - time.perf_counter()) > 0:
                    self._condition.wait(left)
                self._drop_expired()
            faults.point("batcher.batch")
            return self._share()

    def _drop_expired(self) -> None:
        now = time.monotonic()
        for job in [job for job in self._queue if job._expired(now)]:
            self._queue.remove(job)
            self.metrics.queue_size.labels(self.name).dec(len(job.pending))
            _settle(job.future, error=JobAbandoned(f"dropped unfinished: {job._expired(now)}"))

    def _enough_waiting(self) -> bool:
        tokens = sum(job.tokens for job in self._queue)
        inputs = sum(len(job.pending) for job in self._queue)
        return tokens >= self.max_batch_tokens or inputs >= self.max_batch_size

    def _share(self) -> list[tuple[Job, list[int]]]:
        """The next batch: the padding-aware plan over every waiting input, and of its batches the one holding
        the longest remaining input of the job served least recently, so every job moves within a few batches."""
        jobs = [job for job in self._queue if job.pending]
        key = tuple(map(id, jobs))
        if key != self._planned_for or not self._plan:
            pool = [(job, row) for job in jobs for row in job.pending]
            lengths = [len(job.tokenized.ids[row]) for job, row in pool]
            plan = plan_batches(lengths, self.max_batch_size, self.max_batch_tokens, self.overhead)
            self._plan, self._planned_for = [[pool[i] for i in batch] for batch in plan], key
        starved = min(jobs, key=lambda job: job.served_at)
        wanted = (starved, starved.pending[0])
        chosen = next(number for number, batch in enumerate(self._plan) if wanted in batch)
        entries = self._plan.pop(chosen)
        by_job: dict[Job, list[int]] = {}
        for job, row in entries:
            by_job.setdefault(job, []).append(row)
        now = time.perf_counter()
        for job, rows in by_job.items():
            taken = set(rows)
            job.pending = [row for row in job.pending if row not in taken]
            job.served_at = now
        self.metrics.queue_size.labels(self.name).dec(len(entries))
        return list(by_job.items())

    def _run(self, batch: list[tuple[Job, list[int]]]) -> None:
        started = time.perf_counter()
        for job, _ in batch:
            if job.result is None:
                self.metrics.queue_seconds.observe(started - job.queued_at)
                job.result = torch.empty((len(job.tokenized), self.engine.dimension), dtype=torch.float32)
        combined = Tokenized.concat(job.tokenized.take(rows) for job, rows in batch)
        try:
            vectors = self.engine.forward(combined)["sentence_embedding"].to("cpu", torch.float32)
        except Exception as exc:  # fails the requests with inputs in this batch, and only those
            logger.exception("batch of %d inputs failed", len(combined))
            for job, _ in batch:
                self._finish(job, error=exc)
            return
        start = 0
        for job, rows in batch:
            job.result[torch.tensor(rows)] = vectors[start : start + len(rows)]
            start += len(rows)
            if not job.pending:
                self._finish(job)
        self.metrics.inference_seconds.labels(self.name).observe(time.perf_counter() - started)
        self.metrics.batch_size.labels(self.name).observe(len(combined))
        padded = len(combined) * max(combined.token_counts)
        self.metrics.batch_tokens.labels(self.name).observe(padded)
        self.metrics.padded_tokens.labels(self.name).inc(padded)
        self.metrics.real_tokens.labels(self.name).inc(sum(combined.token_counts))
        self.metrics.batch_requests.labels(self.name).observe(len(batch))

    def _finish(self, job: Job, error: BaseException | None = None) -> None:
        with self._condition:
            if job in self._queue:
                self._queue.remove(job)
                self.metrics.queue_size.labels(self.name).dec(len(job.pending))
        _settle(job.future, job.result, error)

    def _died(self, exc: BaseException) -> None:
        reason = f"the batcher of {self.name} died: {type(exc).__name__}: {exc}"
        logger.critical(reason, exc_info=exc)
        now = time.monotonic()
        with self._condition:
            waiting = list(self._queue)
            self._queue.clear()
            self.metrics.queue_size.labels(self.name).set(0)
            self._deaths = [t for t in self._deaths if now - t < self.restart_window] + [now]
            restart = self._running and len(self._deaths) <= self.max_restarts
            if self._running and not restart:
                self._down = f"{reason} ({len(self._deaths)} times in {self.restart_window:g} s; not restarted)"
                self._running = False
        for job in waiting:
            _settle(job.future, error=BatcherDied(reason))
        if restart:
            logger.warning(
                "restarting the batcher of %s (%d of %d restarts)", self.name, len(self._deaths), self.max_restarts
            )
            self._spawn()


def _settle(future: Future, result: object = None, error: BaseException | None = None) -> None:
    """Give ``future`` its outcome unless it has one (a waiter may cancel it at any moment)."""
    try:
        if error is None:
            future.set_result(result)
        else:
            future.set_exception(error)
    except Exception:  # InvalidStateError: cancelled meanwhile
        pass
