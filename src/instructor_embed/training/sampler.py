"""Task-homogeneous batches: every batch, on every process, at every step, comes from one task.

Each epoch, each task's examples are shuffled and cut into *global* batches of
``batch_size * world_size`` (remainders dropped, so no batch mixes tasks); the global batches of all
tasks are shuffled together — so tasks are drawn in proportion to their size — and rank ``r`` takes
slice ``r`` of each. All ranks therefore train on the same task at the same step, which keeps
cross-process negatives (gathered embeddings) same-task too. The order depends only on the seed,
the epoch and the world size.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

from ..errors import InputError


class TaskBatchSampler:
    """Yields lists of example indices; use as a DataLoader ``batch_sampler``."""

    def __init__(
        self, tasks: dict[str, list[int]], batch_size: int, *, seed: int = 0, world_size: int = 1, rank: int = 0
    ):
        if batch_size < 1:
            raise InputError(f"batch_size must be at least 1, got {batch_size}", param="batch_size")
        if not 0 <= rank < world_size:
            raise InputError(f"rank {rank} is outside world_size {world_size}", param="rank")
        self.tasks = {name: list(indices) for name, indices in sorted(tasks.items())}
        self.batch_size, self.seed, self.world_size, self.rank = batch_size, seed, world_size, rank
        self.epoch = 0
        self.start = 0  # batches of this epoch already consumed (for exact resume)
        self.last_task: str | None = None  # the task of the batch yielded last
        if not len(self):
            sizes = ", ".join(f"{name}: {len(indices)}" for name, indices in sorted(tasks.items())[:10])
            raise InputError(
                f"no task has {batch_size * world_size} examples for one global batch of batch_size {batch_size} "
                f"x {world_size} process(es) (examples per task: {sizes}); lower --batch-size",
                param="batch_size",
            )

    def set_epoch(self, epoch: int) -> None:
        self.epoch, self.start = epoch, 0

    def global_batches(self) -> list[tuple[str, list[int]]]:
        """This epoch's (task, global batch) list, identical on every rank."""
        generator = random.Random(f"{self.seed}/{self.epoch}")
        size = self.batch_size * self.world_size
        batches = []
        for name, indices in self.tasks.items():
            shuffled = indices[:]
            generator.shuffle(shuffled)
            batches += [(name, shuffled[i : i + size]) for i in range(0, len(shuffled) - size + 1, size)]
        generator.shuffle(batches)
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        start = self.rank * self.batch_size
        for task, batch in self.global_batches()[self.start :]:
            self.start += 1
            self.last_task = task
            yield batch[start : start + self.batch_size]

    def __len__(self) -> int:
        size = self.batch_size * self.world_size
        return sum(len(indices) // size for indices in self.tasks.values())

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "start": self.start, "seed": self.seed, "world_size": self.world_size}

    def load_state_dict(self, state: dict) -> None:
        if (state["seed"], state["world_size"]) != (self.seed, self.world_size):
            raise InputError(
                f"resuming needs the same seed and world size as the interrupted run (seed {state['seed']}, "
                f"{state['world_size']} process(es)); got seed {self.seed}, {self.world_size} process(es)"
            )
        self.epoch, self.start = state["epoch"], state["start"]
