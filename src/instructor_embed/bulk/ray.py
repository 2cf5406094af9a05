"""INSTRUCTOR inside a user's own Ray Data pipeline (extra ``ray``): a callable class for ``map_batches``.

    import ray
    from instructor_embed.bulk.ray import InstructorBatchEmbedder

    ds = ray.data.read_json("s3://bucket/docs/")
    ds = ds.map_batches(
        InstructorBatchEmbedder,
        fn_constructor_kwargs={"model": "hkunlp/instructor-large",
                               "instruction": "Represent the document for retrieval: "},
        batch_size=256, compute=ray.data.ActorPoolStrategy(size=4), num_gpus=1,   # one model per actor
    )
    ds.write_parquet("s3://bucket/vectors/")

Each actor loads the model once and runs the library's engine steps on every batch, so the vectors are what
``INSTRUCTOR.encode`` gives. The class needs nothing from Ray itself.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np

from ..dependencies import require

if TYPE_CHECKING:
    import torch
from ..encode import postprocess
from ..errors import InputError
from ..spec import ModelSpec, as_spec, resolve_instruction
from ..tokenization import Item


class InstructorBatchEmbedder:
    """Adds an ``embedding`` column (float32, one row per text) to each batch of a Ray Data dataset.

    Args:
        model: Hub id or directory, or a :class:`~instructor_embed.spec.ModelSpec` (then leave device, dtype,
            backend, quantize, max_seq_length and truncate_dim unset: they are the spec's).
        instruction: for rows without their own (``instruction_field``): a null or NaN there means this
            default, ``""`` explicitly none (:func:`~instructor_embed.spec.resolve_instruction`).
        text_field, instruction_field, output_field: the batch's column names.
        batch_size, max_batch_tokens: the forward passes inside one Ray batch.
        normalize, truncate_dim: as ``encode``. device, dtype, backend, quantize, max_seq_length: as ``INSTRUCTOR``.
        threads: torch threads for this embedder (default: torch's, which Ray sets to the actor's CPUs).
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | ModelSpec,
        instruction: str | None = None,
        *,
        text_field: str = "text",
        instruction_field: str = "instruction",
        output_field: str = "embedding",
        batch_size: int = 32,
        max_batch_tokens: int | None = None,
        normalize: bool = False,
        truncate_dim: int | None = None,
        device: str | None = None,
        dtype: str | None = None,
        backend: str | None = None,
        quantize: str | None = None,
        max_seq_length: int | None = None,
        threads: int | None = None,
    ):
        if threads:  # an actor's share of the machine's cores
            import torch

            torch.set_num_threads(threads)
        spec = as_spec(
            model,
            device=device,
            dtype=dtype,
            backend=backend,
            quantize=quantize,
            max_seq_length=max_seq_length,
            truncate_dim=truncate_dim,
        )
        self.model = spec.load()
        self.instruction, self.text_field = instruction, text_field
        self.instruction_field, self.output_field = instruction_field, output_field
        self.batch_size, self.max_batch_tokens = batch_size, max_batch_tokens
        self.normalize, self.truncate_dim = normalize, spec.truncate_dim

    def describe(self) -> tuple[dict, int]:
        """How this embedder's model runs (the runtime as data) and the size of its vectors."""
        return self.model.transformer.runtime.identity(), self.model.get_sentence_embedding_dimension()

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        vectors, _ = self.embed_batch(batch)
        return {**batch, self.output_field: vectors}

    def embed_batch(self, batch: dict[str, Any]) -> tuple[np.ndarray, int]:
        """The batch's vectors (float32, one row per text) and the tokens they took, padding left out."""
        if self.text_field not in batch:
            raise InputError(f"the batch has no {self.text_field!r} column (has {sorted(batch)})", param="text_field")
        texts = list(batch[self.text_field])
        own = list(batch[self.instruction_field]) if self.instruction_field in batch else [None] * len(texts)
        items = []
        for row, (text, instruction) in enumerate(zip(texts, own, strict=True)):
            if not isinstance(text, str):
                raise InputError(
                    f"row {row} of the batch: {self.text_field!r} must be a string, not {type(text).__name__}",
                    param=self.text_field,
                    index=row,
                )
            items.append(Item(resolve_instruction(instruction, self.instruction), text))
        engine = self.model.engine
        tokenized = engine.tokenize(items)
        vectors = engine.run(tokenized, batch_size=self.batch_size, max_batch_tokens=self.max_batch_tokens)
        vectors = postprocess(vectors, truncate_dim=self.truncate_dim, normalize=self.normalize)
        return vectors.numpy().astype(np.float32), sum(tokenized.token_counts)


def start_ray(config) -> None:
    """Connect to ``config.ray_address``, or start a local instance with one CPU per core (unless this process
    already runs Ray, as a user's own pipeline may). Without progress, Ray stays quiet."""
    import logging

    ray = require("ray", "ray", "--engine ray")
    if not ray.is_initialized():
        level = logging.WARNING if config.show_progress else logging.ERROR
        if config.ray_address:
            ray.init(address=config.ray_address, logging_level=level, log_to_driver=False)
        else:
            cpus = max(os.cpu_count() or 1, config.num_workers)
            ray.init(num_cpus=cpus, include_dashboard=False, logging_level=level, log_to_driver=False)
    if not config.show_progress:  # Ray reports every actor's start on its own logger
        logging.getLogger("ray").setLevel(logging.ERROR)


class ActorPoolEngine:
    """``config.num_workers`` Ray actors, each holding the model for the whole job and running
    ``InstructorBatchEmbedder`` (the library's engine steps); every shard is split across them.

    The actors outlive shards, so a model loads once per worker per job, not once per shard. On a local instance
    the cores are shared out between the workers (Ray gives an actor as many threads as CPUs it asks for); on a
    cluster each worker asks for one CPU, or ``gpus_per_worker`` GPUs.
    """

    def __init__(self, config, spec: ModelSpec):
        ray = require("ray", "ray", "--engine ray")
        from ray.util import ActorPool

        cpus = 1 if config.ray_address else max(1, int(ray.available_resources().get("CPU", 1)) // config.num_workers)
        actor = ray.remote(InstructorBatchEmbedder).options(num_cpus=cpus, num_gpus=config.gpus_per_worker or 0)
        self._ray, self._batch_size = ray, config.batch_size
        self.actors = [
            actor.remote(spec, batch_size=config.batch_size, max_batch_tokens=config.max_batch_tokens, threads=cpus)
            for _ in range(config.num_workers)
        ]
        self.pool = ActorPool(self.actors)

    def describe(self) -> tuple[dict, int]:
        """The workers' runtime (as data) and vector size; workers that disagree (``dtype="auto"`` on mixed
        machines) are refused, since their vectors would differ."""
        described = self._ray.get([actor.describe.remote() for actor in self.actors])
        if any(item != described[0] for item in described):
            raise InputError(f"the Ray workers run the model differently: {described}; give dtype explicitly")
        return described[0]

    def submit(self, items: list[Item]) -> int:
        """Queue the items on the workers, in about 4 parts per worker; returns the number of parts, for
        :meth:`collect`. Several submissions may be in flight: they come back in the order they were made."""
        part = max(self._batch_size, -(-len(items) // (4 * len(self.actors))))
        starts = range(0, len(items), part)
        for start in starts:
            batch = {
                "text": np.array([item.text for item in items[start : start + part]], dtype=object),
                "instruction": np.array([item.instruction for item in items[start : start + part]], dtype=object),
            }
            self.pool.submit(lambda actor, value: actor.embed_batch.remote(value), batch)
        return len(starts)

    def collect(self, parts: int, on_part=None) -> tuple[torch.Tensor, int]:
        """The vectors, in input order, and the tokens of the oldest submission's ``parts`` parts
        (``on_part(rows)`` after each part comes back)."""
        import torch

        vectors, tokens = [], 0
        for _ in range(parts):
            part, count = self.pool.get_next()
            vectors.append(part)
            tokens += count
            if on_part:
                on_part(len(part))
        if not vectors:
            return torch.zeros((0, self.describe()[1])), 0
        return torch.from_numpy(np.concatenate(vectors).astype(np.float32, copy=False)), tokens

    def close(self) -> None:
        for actor in self.actors:
            self._ray.kill(actor)
