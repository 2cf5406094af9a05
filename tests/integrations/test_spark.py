"""Spark, a real local session (local[2]): mapInPandas and the pandas UDF give encode's vectors."""

from __future__ import annotations

import os
import shutil
import sys

import numpy as np
import pytest

pytest.importorskip("pyspark")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("java") is None, reason="Spark needs a Java runtime (apt-get install default-jre)"),
]

INSTRUCTION = "Represent the sentence: "


@pytest.fixture(scope="module")
def spark():
    from pyspark.sql import SparkSession

    os.environ["PYSPARK_PYTHON"] = os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    session = (
        SparkSession.builder.master("local[2]")
        .appName("instructor-embed-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", "16")
        .getOrCreate()
    )
    try:
        yield session
    finally:
        session.stop()


def rows() -> list[tuple]:
    found = [(i, f"sentence {i} about topic {i % 5} " + "more " * (i % 7), None) for i in range(40)]
    found[3] = (3, found[3][1], "Represent the Science title: ")
    found[5] = (5, found[5][1], "")  # explicitly none
    return found


def expected(model) -> np.ndarray:
    own = [instruction if instruction is not None else INSTRUCTION for _, _, instruction in rows()]
    return model.encode([[instruction, text] for (_, text, _), instruction in zip(rows(), own, strict=True)])


def test_map_in_pandas_gives_the_librarys_vectors(spark, tiny_t5_dir, tiny_model):
    from instructor_embed.integrations.spark import embed_partitions, embedding_schema

    frame = spark.createDataFrame(rows(), "id long, text string, instruction string").repartition(3)
    fn = embed_partitions(str(tiny_t5_dir), instruction=INSTRUCTION, instruction_col="instruction", device="cpu")
    out = sorted(frame.mapInPandas(fn, schema=embedding_schema(frame.schema)).collect(), key=lambda row: row["id"])
    assert [row["id"] for row in out] == list(range(40)) and out[3]["text"] == rows()[3][1]
    assert np.abs(np.array([row["embedding"] for row in out], dtype=np.float32) - expected(tiny_model)).max() <= 1e-6


def test_the_pandas_udf_gives_the_librarys_vectors(spark, tiny_t5_dir, tiny_model):
    from instructor_embed.integrations.spark import embedding_udf

    frame = spark.createDataFrame(rows(), "id long, text string, instruction string")
    embed = embedding_udf(str(tiny_t5_dir), instruction=INSTRUCTION, device="cpu")
    out = frame.withColumn("embedding", embed("text", "instruction")).orderBy("id").collect()
    assert np.abs(np.array([row["embedding"] for row in out], dtype=np.float32) - expected(tiny_model)).max() <= 1e-6
    plain = frame.withColumn("embedding", embed("text")).orderBy("id").collect()
    default = tiny_model.encode([[INSTRUCTION, text] for _, text, _ in rows()])
    assert np.abs(np.array([row["embedding"] for row in plain], dtype=np.float32) - default).max() <= 1e-6


def test_executors_can_call_a_running_server_instead(spark, minilm_dir, minilm_model, tmp_path):
    pytest.importorskip("fastapi")
    from serving import running_server

    from instructor_embed.integrations.spark import embed_partitions, embedding_schema

    frame = spark.createDataFrame(rows(), "id long, text string, instruction string")
    with running_server(["--model", f"minilm={minilm_dir}", "--device", "cpu"], tmp_path / "log") as server:
        fn = embed_partitions("minilm", instruction=INSTRUCTION, instruction_col="instruction", base_url=server.url)
        out = sorted(frame.mapInPandas(fn, schema=embedding_schema(frame.schema)).collect(), key=lambda row: row["id"])
    assert np.abs(np.array([row["embedding"] for row in out], dtype=np.float32) - expected(minilm_model)).max() <= 1e-6
