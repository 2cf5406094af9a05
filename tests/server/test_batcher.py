"""The batcher in-process with a small fake engine: vectors to their owners, failure isolation, abandoned and
expired jobs dropped unrun, draining on stop, thread death and restart, and fair sharing of batches."""

from __future__ import annotations

import threading
import time

import pytest
import torch

pytest.importorskip("prometheus_client")

from instructor_embed import faults  # noqa: E402
from instructor_embed.encode import plan_batches  # noqa: E402
from instructor_embed.server.batcher import Batcher, BatcherDied, JobAbandoned  # noqa: E402
from instructor_embed.server.metrics import Metrics  # noqa: E402
from instructor_embed.tokenization import Tokenized  # noqa: E402

POISON = 666  # a token id that makes the fake engine's batch fail


class FakeEngine:
    """Embeds an input as (its first id, its length); records every batch; can hold each batch until let go."""

    dimension = 2

    def __init__(self, hold: bool = False):
        self.batches: list[list[int]] = []
        self.hold = hold
        self.started = threading.Semaphore(0)
        self.go = threading.Semaphore(0)

    def forward(self, batch: Tokenized):
        self.batches.append([row[0] for row in batch.ids])
        if self.hold:
            self.started.release()
            assert self.go.acquire(timeout=30)
        if any(row[0] == POISON for row in batch.ids):
            raise RuntimeError("poisoned batch")
        rows = [[float(row[0]), float(len(row))] for row in batch.ids]
        return {"sentence_embedding": torch.tensor(rows)}


def tokenized(*first_ids: int, length: int = 3) -> Tokenized:
    return Tokenized([[i] + [1] * (length - 1) for i in first_ids], [0] * len(first_ids))


@pytest.fixture
def make():
    made = []

    def make(engine, **options) -> Batcher:
        settings = {"max_batch_tokens": 4096, "max_batch_size": 128, "max_wait_ms": 0.0, **options}
        batcher = Batcher(engine, "fake", Metrics(), **settings)
        batcher.start()
        made.append(batcher)
        return batcher

    yield make
    for batcher in made:
        if not batcher.down:
            batcher.stop()


def test_each_job_gets_its_own_vectors_in_its_own_order(make):
    batcher = make(FakeEngine(), max_wait_ms=50)
    jobs = [batcher.submit(Tokenized([[i, 1], [i + 100, 1, 1, 1]], [0, 0])) for i in range(5)]
    for i, job in enumerate(jobs):
        assert job.future.result(10).tolist() == [[i, 2], [i + 100, 4]]


def test_a_failing_batch_fails_only_its_jobs(make):
    engine = FakeEngine()
    batcher = make(engine, max_batch_size=1, max_wait_ms=50)
    bad, good = batcher.submit(tokenized(POISON)), batcher.submit(tokenized(7))
    with pytest.raises(RuntimeError, match="poisoned"):
        bad.future.result(10)
    assert good.future.result(10).tolist() == [[7, 3]]
    assert batcher.submit(tokenized(8)).future.result(10).tolist() == [[8, 3]]  # still serving


def test_abandoned_and_expired_jobs_are_dropped_before_they_run(make):
    engine = FakeEngine(hold=True)
    batcher = make(engine)
    first = batcher.submit(tokenized(1))
    assert engine.started.acquire(timeout=10)  # the first batch is running
    left = batcher.submit(tokenized(2))
    late = batcher.submit(tokenized(3), deadline=time.monotonic() + 0.05)
    kept = batcher.submit(tokenized(4))
    left.abandon()
    time.sleep(0.1)
    engine.go.release()
    engine.go.release()
    assert first.future.result(10).tolist() == [[1, 3]]
    assert kept.future.result(10).tolist() == [[4, 3]]
    for job in (left, late):
        with pytest.raises(JobAbandoned):
            job.future.result(10)
    assert engine.batches == [[1], [4]]  # neither dropped job ever reached the engine


def test_a_job_abandoned_midway_stops_after_its_running_batch(make):
    engine = FakeEngine(hold=True)
    batcher = make(engine, max_batch_size=2)
    job = batcher.submit(tokenized(*range(10)))
    assert engine.started.acquire(timeout=10)
    job.abandon()
    engine.go.release()
    with pytest.raises(JobAbandoned):
        job.future.result(10)
    assert len(engine.batches) == 1


def test_stop_finishes_every_accepted_job(make):
    engine = FakeEngine()
    batcher = make(engine, max_batch_size=2, max_wait_ms=200)
    jobs = [batcher.submit(tokenized(i, i + 1)) for i in range(10)]
    batcher.stop()
    assert [job.future.result(0).tolist() for job in jobs] == [[[i, 3], [i + 1, 3]] for i in range(10)]
    with pytest.raises(RuntimeError, match="stopped"):
        batcher.submit(tokenized(1))


def test_a_dying_worker_fails_the_waiting_jobs_at_once_and_restarts_then_stays_down(make):
    """Defect: the worker had no top-level guard; once dead, every queued future waited forever."""
    batcher = make(FakeEngine(), max_restarts=2, max_wait_ms=20)
    for death in range(1, 4):
        with faults.armed("batcher.batch", "raise"):
            jobs = [batcher.submit(tokenized(1)), batcher.submit(tokenized(2))]
            for job in jobs:
                with pytest.raises(BatcherDied, match="FaultInjected"):
                    job.future.result(10)
        if death <= 2:
            assert batcher.down is None
            assert batcher.submit(tokenized(5)).future.result(10).tolist() == [[5, 3]]  # restarted
    assert batcher.restarts == 3 and "not restarted" in batcher.down
    with pytest.raises(BatcherDied, match="not restarted"):
        batcher.submit(tokenized(6))


def test_a_small_request_joins_the_next_batch_of_a_large_one(make):
    """Defect: a large job ran as one round; a one-input request sent meanwhile waited for all of it."""
    engine = FakeEngine(hold=True)
    batcher = make(engine, max_batch_size=8)
    large = batcher.submit(tokenized(*range(1000, 1100)))
    assert engine.started.acquire(timeout=10)
    small = batcher.submit(tokenized(7))
    engine.go.release()
    assert engine.started.acquire(timeout=10)
    assert 7 in engine.batches[1]  # the very next batch, shared with the large job
    engine.hold = False
    engine.go.release()
    assert small.future.result(10).tolist() == [[7, 3]]
    assert large.future.result(10)[:, 0].tolist() == list(range(1000, 1100))


def test_every_waiting_job_is_served_within_as_many_batches_as_jobs(make):
    engine = FakeEngine(hold=True)
    batcher = make(engine, max_batch_size=9)
    blocker = batcher.submit(tokenized(1))
    assert engine.started.acquire(timeout=10)
    jobs = [batcher.submit(tokenized(*range(start, start + 20))) for start in (100, 200, 300)]
    engine.hold = False
    engine.go.release()
    for job in (blocker, *jobs):
        job.future.result(10)
    next_three = [i for batch in engine.batches[1:4] for i in batch]
    assert all(any(start <= i < start + 20 for i in next_three) for start in (100, 200, 300))


def test_a_mixed_round_runs_as_length_homogeneous_batches(make):
    """Many one-input requests of mixed lengths: the padding-aware plan splits them by length."""
    engine = FakeEngine(hold=True)
    batcher = make(engine, overhead=8)
    blocker = batcher.submit(tokenized(1))
    assert engine.started.acquire(timeout=10)
    jobs = [batcher.submit(tokenized(1000 + i, length=4 if i % 2 else 120)) for i in range(40)]
    engine.hold = False
    engine.go.release()
    for job in (blocker, *jobs):
        job.future.result(10)
    rounds = engine.batches[1:]
    assert len(rounds) == 2 and {len(batch) for batch in rounds} == {20}  # the short ones apart from the long
    metrics = batcher.metrics.render().decode()
    assert "instructor_embed_batch_padded_tokens_total" in metrics and "instructor_embed_batch_real_tokens" in metrics


@pytest.mark.parametrize("overhead", [None, 16])
def test_one_job_is_batched_exactly_as_plan_batches(overhead):
    lengths = [5, 17, 3, 3, 40, 9, 9, 12, 1, 30] * 7
    engine = FakeEngine()
    batcher = Batcher(
        engine, "fake", Metrics(), max_batch_tokens=200, max_batch_size=16, max_wait_ms=0, overhead=overhead
    )
    batcher.start()
    ids = [[i] + [1] * (n - 1) for i, n in enumerate(lengths)]
    batcher.submit(Tokenized(ids, [0] * len(ids))).future.result(10)
    batcher.stop()
    as_sets = sorted(sorted(batch) for batch in engine.batches)
    assert as_sets == sorted(sorted(batch) for batch in plan_batches(lengths, 16, 200, overhead))
