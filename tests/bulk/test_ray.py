"""InstructorBatchEmbedder inside a real Ray Data pipeline, and the Ray engine of a bulk job (its kills: tests/reliability)."""

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
    rows[5]["instruction"] = ""  # explicitly none
    for row in rows:
        row.setdefault("instruction", None)  # null: the default instruction (the one rule, resolve_instruction)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        import pyarrow as pa

        columns = {name: [row[name] for row in rows] for name in ("id", "text", "instruction")}
        table = pa.table(
            columns, schema=pa.schema([("id", pa.int64()), ("text", pa.string()), ("instruction", pa.string())])
        )
        dataset = (
            ray.data.from_arrow(table)
            .repartition(3)
            .map_batches(
                InstructorBatchEmbedder,
                fn_constructor_kwargs={"model": str(tiny_t5_dir), "instruction": INSTRUCTION, "device": "cpu"},
                batch_size=16,
                compute=ray.data.ActorPoolStrategy(size=1),
                batch_format="numpy",
            )
        )
        dataset.write_parquet(str(tmp_path / "vectors"))
        out = sorted(ray.data.read_parquet(str(tmp_path / "vectors")).take_all(), key=lambda row: row["id"])
    finally:
        ray.shutdown()
    own = [row["instruction"] if row["instruction"] is not None else INSTRUCTION for row in rows]
    expected = tiny_model.encode([[instruction, row["text"]] for instruction, row in zip(own, rows, strict=True)])
    assert own[5] == "" and np.abs(expected[5] - tiny_model.encode(rows[5]["text"])).max() <= 1e-6
    assert [row["id"] for row in out] == list(range(40))
    assert np.abs(np.array([row["embedding"] for row in out]) - expected).max() <= 1e-6


def test_the_ray_engine_equals_the_local_one_and_resumes(tiny_t5_dir, tmp_path, monkeypatch):
    """encode's resumable job with its forward passes on a Ray actor pool: the same rows, vectors and token counts
    as the local engine (the workers count the tokens; the driver does not tokenize again); the next shard goes to
    the workers before the current one is collected and written; after an interruption (the manifest cut back to
    its first shard, as a kill would leave it) a re-run on Ray does the rest."""
    import json

    from test_job import read_output, run_job, write_input

    from instructor_embed.bulk import job

    events = []
    begin, finish = job._Runner.begin, job._Runner.finish
    monkeypatch.setattr(
        job._Runner, "begin", lambda self, rows, *a: events.append(("begin", rows[0][0])) or begin(self, rows, *a)
    )
    monkeypatch.setattr(
        job._Runner, "finish", lambda self, p, *a: events.append(("finish", p.rows)) or finish(self, p, *a)
    )
    write_input(tmp_path / "in.jsonl", 70)
    local_summary = run_job(tiny_t5_dir, tmp_path / "in.jsonl", tmp_path / "local", shard_rows=30)
    assert [kind for kind, _ in events] == ["begin", "finish"] * 3
    events.clear()
    tokenize = job.InstructionTokenizer.tokenize
    monkeypatch.setattr(
        job.InstructionTokenizer, "tokenize", lambda *a, **k: events.append(("tokenize",)) or tokenize(*a, **k)
    )
    try:
        summary = run_job(
            tiny_t5_dir, tmp_path / "in.jsonl", tmp_path / "ray", shard_rows=30, engine="ray", num_workers=1
        )
        assert (summary.rows, summary.shards) == (70, 3)
        assert [kind for kind, *_ in events] == ["begin", "begin", "finish", "begin", "finish", "finish"]
        assert summary.tokens == local_summary.tokens > 0
        manifest_path = tmp_path / "ray" / "_manifest.json"
        manifest = json.loads(manifest_path.read_text())
        manifest_path.write_text(json.dumps({**manifest, "shards": manifest["shards"][:1], "complete": False}))
        resumed = run_job(
            tiny_t5_dir, tmp_path / "in.jsonl", tmp_path / "ray", shard_rows=30, engine="ray", num_workers=1
        )
    finally:
        ray.shutdown()
    assert resumed.embedded_now == 40
    local_ids, local = read_output(tmp_path / "local")
    ray_ids, on_ray = read_output(tmp_path / "ray")
    assert ray_ids == local_ids and np.abs(on_ray - local).max() <= 1e-6
