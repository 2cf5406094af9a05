"""Spark: embed a DataFrame's text column, the model loaded once per executor process (extra ``spark``).

Two forms, the same vectors as ``encode``::

    from instructor_embed.integrations.spark import embed_partitions, embedding_schema, embedding_udf

    fn = embed_partitions("hkunlp/instructor-large", instruction="Represent the document for retrieval: ")
    vectors = docs.mapInPandas(fn, schema=embedding_schema(docs.schema))        # every column + "embedding"

    embed = embedding_udf("hkunlp/instructor-large", instruction="Represent the document for retrieval: ")
    vectors = docs.withColumn("embedding", embed("text"))                        # or embed("text", "instruction")

Each Python worker loads the model the first time a batch reaches it and keeps it for the next batches (Spark
reuses its Python workers by default), so a model loads once per worker process, not once per batch. A row's
own instruction (``instruction_col``) wins over ``instruction``: a null means the default, ``""`` none.
"""

import os
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InputError
from ..spec import ModelSpec, as_spec, resolve_instruction
from ._backend import Backend

if TYPE_CHECKING:
    import pandas as pd

# No "from __future__ import annotations" here: pandas_udf reads the UDFs' type hints, which must be real types.
_BACKENDS: dict[tuple, Backend] = {}  # this process's models (or servers), loaded once per executor worker
_LOCK = threading.Lock()


def _backend(target: tuple) -> Backend:
    spec, base_url, key_variable = target
    with _LOCK:
        if target not in _BACKENDS:
            backend = Backend(spec, base_url=base_url, api_key=os.environ.get(key_variable), extra="spark")
            backend.warm_up()
            _BACKENDS[target] = backend
        return _BACKENDS[target]


def _embed(
    target: tuple, texts, instructions, default: str | None, batch_size: int, normalize: bool
) -> list[np.ndarray]:
    texts, instructions = list(texts), [resolve_instruction(own, default) for own in instructions]
    for row, text in enumerate(texts):
        if not isinstance(text, str):
            raise InputError(f"row {row} of the batch: the text must be a string, not {type(text).__name__}", index=row)
    backend, vectors = _backend(target), []
    for instruction in dict.fromkeys(instructions):  # the backend takes one instruction per call: group by it
        rows = [row for row, own in enumerate(instructions) if own == instruction]
        found = backend.embed(
            [texts[row] for row in rows], instruction, batch_size=batch_size, normalize_embeddings=normalize
        )
        vectors += list(zip(rows, found, strict=True))
    return [vector for _, vector in sorted(vectors, key=lambda pair: pair[0])]


def embed_partitions(
    model: str | os.PathLike[str] | ModelSpec,
    *,
    instruction: str | None = None,
    text_col: str = "text",
    instruction_col: str | None = None,
    output_col: str = "embedding",
    batch_size: int = 32,
    normalize: bool = False,
    base_url: str | None = None,
    api_key_env_var: str = "INSTRUCTOR_EMBED_API_KEY",
    **model_options: Any,
) -> "Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]":
    """A function for ``DataFrame.mapInPandas``: each batch comes back with ``output_col`` (float32 arrays) added.
    Use :func:`embedding_schema` for its schema. ``model_options`` are ``ModelSpec``'s (device, dtype, ...);
    with ``base_url`` the executors call a running ``instructor-embed serve`` instead of loading the model."""
    target = (as_spec(model, **model_options), base_url, api_key_env_var)

    def embed(batches: "Iterator[pd.DataFrame]") -> "Iterator[pd.DataFrame]":
        for batch in batches:
            if text_col not in batch.columns:
                raise InputError(
                    f"the DataFrame has no {text_col!r} column (has {list(batch.columns)})", param="text_col"
                )
            own = (
                batch[instruction_col] if instruction_col and instruction_col in batch.columns else [None] * len(batch)
            )
            vectors = _embed(target, batch[text_col], own, instruction, batch_size, normalize)
            yield batch.assign(**{output_col: vectors})

    return embed


def embedding_schema(schema, output_col: str = "embedding"):
    """``schema`` with an ``output_col`` array<float> column added: the schema :func:`embed_partitions` returns."""
    from pyspark.sql.types import ArrayType, FloatType, StructField, StructType

    return StructType([*schema.fields, StructField(output_col, ArrayType(FloatType(), containsNull=False))])


def embedding_udf(
    model: str | os.PathLike[str] | ModelSpec,
    *,
    instruction: str | None = None,
    batch_size: int = 32,
    normalize: bool = False,
    base_url: str | None = None,
    api_key_env_var: str = "INSTRUCTOR_EMBED_API_KEY",
    **model_options: Any,
):
    """A column function ``embed(text_col, instruction_col=None)`` built on ``pandas_udf``s: array<float> vectors
    of the text column, each with the row's own instruction when an instruction column is given."""
    import pandas as pd
    from pyspark.sql.functions import pandas_udf
    from pyspark.sql.types import ArrayType, FloatType

    target = (as_spec(model, **model_options), base_url, api_key_env_var)

    @pandas_udf(ArrayType(FloatType()))
    def plain(texts: pd.Series) -> pd.Series:
        return pd.Series(_embed(target, texts, [None] * len(texts), instruction, batch_size, normalize))

    @pandas_udf(ArrayType(FloatType()))
    def with_own(texts: pd.Series, own: pd.Series) -> pd.Series:
        return pd.Series(_embed(target, texts, own, instruction, batch_size, normalize))

    def embed(text_col, instruction_col=None):
        return plain(text_col) if instruction_col is None else with_own(text_col, instruction_col)

    return embed
