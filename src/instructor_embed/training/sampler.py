"""Task-homogeneous batches: every batch, on every process, at every step, comes from one task.

Each epoch, each task's examples are shuffled and cut into *global* batches of
``batch_size * world_size`` (remainders dropped, so no batch mixes tasks); the global batches of all
tasks are shuffled together — so tasks are drawn in proportion to their size, times their weight — and rank
``r`` takes slice ``r`` of each. A task of weight ``w`` contributes ``round(w * n)`` of its ``n`` batches per
epoch (more than ``n``: further shuffles of the same task; 0: none), so a few large tasks need not dominate. All ranks therefore train on the same task at the same step, which keeps
cross-process negatives (gathered embeddings) same-task too. The order depends only on the seed,
the epoch and the world size.

Rows with a ``group`` (a labelled text's label) are batched so that no global batch holds one group twice:
each batch takes one row from each of the groups with the most rows left (ties broken at random), so their
in-batch negatives are true negatives and groups are used up evenly.
"""

from __future__ import annotations

import math
import random
from collections.abc import Hashable, Iterator, Mapping

from ..errors import InputError


class TaskBatchSampler:
    """Yields lists of example indices; use as a DataLoader ``batch_sampler``."""

    def __init__(
        self,
        tasks: dict[str, list[int]],
        batch_size: int,
        *,
        seed: int = 0,
        world_size: int = 1,
        rank: int = 0,
        weights: Mapping[str, float] | None = None,
        groups: Mapping[int, Hashable] | None = None,
    ):
        if batch_size < 1:
            raise InputError(f"batch_size must be at least 1, got {batch_size}", param="batch_size")
        if not 0 <= rank < world_size:
            raise InputError(f"rank {rank} is outside world_size {world_size}", param="rank")
        self.tasks = {name: list(indices) for name, indices in sorted(tasks.items())}
        self.weights = _checked_weights(weights or {}, self.tasks)
        self.groups = dict(groups or {})
        self._pass_sizes: dict[str, int] = {}
        self.batch_size, self.seed, self.world_size, self.rank = batch_size, seed, world_size, rank
        self.epoch = 0
        self.start = 0  # batches of this epoch already consumed (for exact resume)
        self.last_task: str | None = None  # the task of the batch yielded last
        if not len(self):
            sizes = ", ".join(f"{name}: {self._size_of(name)}" for name in list(self.tasks)[:10])
            raise InputError(
                f"no task has {batch_size * world_size} examples for one global batch of batch_size {batch_size} "
                f"x {world_size} process(es) (examples per task: {sizes}); lower --batch-size",
                param="batch_size",
            )

    def _size_of(self, task: str) -> str:
        indices = self.tasks[task]
        if indices and indices[0] in self.groups:  # a batch holds one row per label
            return f"{len(indices)} of {len({self.groups[i] for i in indices})} labels (one per batch row)"
        return str(len(indices))

    def set_epoch(self, epoch: int) -> None:
        self.epoch, self.start = epoch, 0

    def global_batches(self) -> list[tuple[str, list[int]]]:
        """This epoch's (task, global batch) list, identical on every rank."""
        generator = random.Random(f"{self.seed}/{self.epoch}")
        batches = []
        for name in self.tasks:
            wanted, own = self._batches_of(name), []
            while len(own) < wanted:  # a weight above 1: further passes over the task, each shuffled anew
                own += [(name, batch) for batch in self._one_pass(name, generator)]
            batches += own[:wanted]
        generator.shuffle(batches)
        return batches

    def _one_pass(self, task: str, generator: random.Random) -> list[list[int]]:
        """One shuffled pass over a task in global batches (remainders dropped)."""
        size = self.batch_size * self.world_size
        shuffled = self.tasks[task][:]
        generator.shuffle(shuffled)
        if shuffled and shuffled[0] not in self.groups:
            return [shuffled[i : i + size] for i in range(0, len(shuffled) - size + 1, size)]
        left: dict[Hashable, list[int]] = {}
        for index in shuffled:
            left.setdefault(self.groups[index], []).append(index)
        keys = list(left)
        batches = []
        while sum(1 for key in keys if left[key]) >= size:
            ties = {key: generator.random() for key in keys}
            chosen = sorted((key for key in keys if left[key]), key=lambda key: (-len(left[key]), ties[key]))[:size]
            batches.append([left[key].pop() for key in chosen])
        return batches

    def _batches_of(self, task: str) -> int:
        """The task's global batches per epoch: its full batches (for grouped rows, those with distinct groups;
        their number does not depend on the shuffle), times its weight."""
        if task not in self._pass_sizes:
            self._pass_sizes[task] = len(self._one_pass(task, random.Random(0)))
        return round(self.weights.get(task, 1.0) * self._pass_sizes[task])

    def batches_per_epoch(self) -> dict[str, int]:
        """Each task's global batches in one epoch (the task mix)."""
        return {name: self._batches_of(name) for name in self.tasks}

    def __iter__(self) -> Iterator[list[int]]:
        start = self.rank * self.batch_size
        for task, batch in self.global_batches()[self.start :]:
            self.start += 1
            self.last_task = task
            yield batch[start : start + self.batch_size]

    def __len__(self) -> int:
        return sum(self.batches_per_epoch().values())

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "start": self.start, "seed": self.seed, "world_size": self.world_size}

    def load_state_dict(self, state: dict) -> None:
        if (state["seed"], state["world_size"]) != (self.seed, self.world_size):
            raise InputError(
                f"resuming needs the same seed and world size as the interrupted run (seed {state['seed']}, "
                f"{state['world_size']} process(es)); got seed {self.seed}, {self.world_size} process(es)"
            )
        self.epoch, self.start = state["epoch"], state["start"]


def _checked_weights(weights: Mapping[str, float], tasks: Mapping[str, list[int]]) -> dict[str, float]:
    unknown = sorted(set(weights) - set(tasks))
    if unknown:
        raise InputError(
            f"task weights name tasks the data does not have: {unknown[:10]} (tasks: {sorted(tasks)[:20]})",
            param="task_weights",
        )
    for name, weight in weights.items():
        if not (isinstance(weight, (int, float)) and math.isfinite(weight) and weight >= 0):
            raise InputError(f"the weight of task {name!r} must be a number >= 0, got {weight!r}", param="task_weights")
    return dict(weights)
