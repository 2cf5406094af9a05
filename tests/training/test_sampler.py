from collections import Counter

import pytest

from instructor_embed.training.sampler import TaskBatchSampler

TASKS = {"a": list(range(0, 40)), "b": list(range(40, 50)), "c": list(range(50, 130))}
TASK_OF = {i: name for name, indices in TASKS.items() for i in indices}


def test_every_batch_is_single_task_and_deterministic():
    sampler = TaskBatchSampler(TASKS, batch_size=4, seed=1)
    batches = list(sampler)
    assert all(len({TASK_OF[i] for i in batch}) == 1 for batch in batches)
    assert all(len(batch) == 4 for batch in batches)
    assert batches == list(TaskBatchSampler(TASKS, batch_size=4, seed=1))
    assert batches != list(TaskBatchSampler(TASKS, batch_size=4, seed=2))
    assert Counter(TASK_OF[b[0]] for b in batches) == {"a": 10, "b": 2, "c": 20}  # in proportion to size


def test_ranks_share_the_task_at_every_step_and_never_an_example():
    ranks = [list(TaskBatchSampler(TASKS, batch_size=3, seed=0, world_size=2, rank=r)) for r in range(2)]
    assert len(ranks[0]) == len(ranks[1])
    for left, right in zip(*ranks, strict=True):
        assert {TASK_OF[i] for i in left} == {TASK_OF[i] for i in right}
        assert not set(left) & set(right)


def test_epochs_reshuffle_and_state_resumes_exactly():
    sampler = TaskBatchSampler(TASKS, batch_size=4, seed=0)
    first = list(sampler)
    sampler.set_epoch(1)
    second_epoch = iter(sampler)
    consumed = [next(second_epoch) for _ in range(5)]
    assert consumed != first[:5]
    resumed = TaskBatchSampler(TASKS, batch_size=4, seed=0)
    resumed.load_state_dict(sampler.state_dict())
    rest = list(resumed)
    sampler.set_epoch(1)
    assert consumed + rest == list(sampler)


def test_bad_settings():
    with pytest.raises(ValueError, match="no task has 200 examples"):
        TaskBatchSampler(TASKS, batch_size=100, world_size=2)
    with pytest.raises(ValueError, match="rank 2 is outside"):
        TaskBatchSampler(TASKS, batch_size=2, world_size=2, rank=2)


def test_task_weights_scale_each_tasks_batches_per_epoch():
    weighted = TaskBatchSampler(TASKS, batch_size=4, seed=1, weights={"a": 2.5, "c": 0.5, "b": 0})
    batches = list(weighted)
    assert weighted.batches_per_epoch() == {"a": 25, "b": 0, "c": 10} and len(batches) == len(weighted) == 35
    assert Counter(TASK_OF[b[0]] for b in batches) == {"a": 25, "c": 10}
    assert all(len({TASK_OF[i] for i in batch}) == 1 and len(set(batch)) == 4 for batch in batches)
    a_batches = [tuple(b) for b in batches if TASK_OF[b[0]] == "a"]
    assert len(set(a_batches)) == 25  # the second and third passes over "a" are shuffled anew
    assert batches == list(TaskBatchSampler(TASKS, batch_size=4, seed=1, weights={"a": 2.5, "c": 0.5, "b": 0}))


@pytest.mark.parametrize(
    ("weights", "message"),
    [({"z": 1.0}, r"name tasks the data does not have: \['z'\]"), ({"a": -1.0}, "task 'a' must be a number >= 0")],
)
def test_bad_task_weights_are_named(weights, message):
    with pytest.raises(ValueError, match=message):
        TaskBatchSampler(TASKS, batch_size=4, weights=weights)
