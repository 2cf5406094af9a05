"""InstructorBatchEmbedder inside a real Ray Data pipeline on a local Ray instance."""

from __future__ import annotations

import numpy as np
import pytest

ray = pytest.importorskip("ray")

pytestmark = pytest.mark.slow

INSTRUCTION = "Represent the sentence: "


def test_map_batches_gives_the_librarys_vectors(tiny_t5_dir, tiny_model, tmp_path):
    from instructor_embed.bulk.ray import InstructorBatchEmbedder

    rows = [{"id": i, "text": f"sentence {i} " + "more " * (i % 9)} for i in range(40)]
    rows[3]["instruction"] = "Represent the Science title: "
    for row in rows:
        row.setdefault("instruction", "")  # Arrow columns need one type: "" means the default instruction
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        dataset = ray.data.from_items(rows).map_batches(
            InstructorBatchEmbedder,
            fn_constructor_kwargs={"model": str(tiny_t5_dir), "instruction": INSTRUCTION, "device": "cpu"},
            batch_size=16,
            concurrency=1,
            batch_format="numpy",
        )
        dataset.write_parquet(str(tmp_path / "vectors"))
        out = sorted(ray.data.read_parquet(str(tmp_path / "vectors")).take_all(), key=lambda row: row["id"])
    finally:
        ray.shutdown()
    expected = tiny_model.encode([[row["instruction"] or INSTRUCTION, row["text"]] for row in rows])
    assert [row["id"] for row in out] == list(range(40))
    assert np.abs(np.array([row["embedding"] for row in out]) - expected).max() <= 1e-6
