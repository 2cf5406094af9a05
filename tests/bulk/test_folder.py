"""The output folder is the job's alone: data tools read it as it is, the job touches only its own files, one
job at a time, a structured resume identity, and folders of instructor-embed 0.1 migrated on resume."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from test_job import INSTRUCTION, read_output, run_job, write_input

from instructor_embed import InputError, faults
from instructor_embed.bulk.folder import JobFolder

pq = pytest.importorskip("pyarrow.parquet")
LEGACY = Path(__file__).parent / "legacy-0.1"  # written by instructor-embed 0.1 (commit 42dcdd3), tiny T5 seed 0


def finished_job(tiny_t5_dir, tmp_path, rows: int = 50, **options) -> tuple[Path, list, np.ndarray]:
    write_input(tmp_path / "in.jsonl", rows, row3={"id": "bad", "text": 3})
    run_job(tiny_t5_dir, tmp_path / "in.jsonl", tmp_path / "out", shard_rows=15, skip_invalid=True, **options)
    return (tmp_path / "out", *read_output(tmp_path / "out"))


def test_pyarrow_pandas_polars_and_duckdb_read_the_folder_as_a_dataset(tiny_t5_dir, tmp_path):
    folder, ids, vectors = finished_job(tiny_t5_dir, tmp_path)
    expected = dict(zip(ids, vectors, strict=True))

    def same(got_ids, got_vectors) -> None:
        assert sorted(got_ids) == sorted(ids) and len(set(got_ids)) == len(ids)
        for row_id, vector in zip(got_ids, got_vectors, strict=True):
            assert np.array_equal(np.asarray(vector, dtype=np.float32), expected[row_id])

    table = pq.read_table(folder)  # _manifest.json, _invalid_rows.jsonl, _lock: skipped by their "_"
    same(table.column("id").to_pylist(), table.column("embedding").to_pylist())
    pandas = pytest.importorskip("pandas")
    frame = pandas.read_parquet(folder)
    same(list(frame["id"]), list(frame["embedding"]))
    polars = pytest.importorskip("polars")
    frame = polars.read_parquet(folder / "*.parquet")
    same(frame["id"].to_list(), frame["embedding"].to_list())
    duckdb = pytest.importorskip("duckdb")
    rows = duckdb.sql(f"SELECT id, embedding FROM read_parquet('{folder}/*.parquet')").fetchall()
    same([row[0] for row in rows], [row[1] for row in rows])


def test_a_resumed_job_keeps_the_users_files_and_a_derived_index(tiny_t5_dir, tiny_model, tmp_path):
    pytest.importorskip("faiss")
    from instructor_embed.bulk.search import search

    folder, ids, vectors = finished_job(tiny_t5_dir, tmp_path)
    search(folder, ["topic 3"], model=tiny_model, faiss=True)
    built = (folder / "_faiss" / "index.faiss").stat().st_mtime_ns
    (folder / "notes.txt").write_text("mine")
    (folder / "mine").mkdir()
    (folder / "mine" / "data.bin").write_bytes(b"\x00")
    (folder / ".hidden").write_text("mine too")
    (folder / "part-99.parquet.bak").write_text("not a shard name")  # near a shard's name, still the user's
    manifest = json.loads((folder / "_manifest.json").read_text())
    (folder / "_manifest.json").write_text(
        json.dumps({**manifest, "shards": manifest["shards"][:1], "complete": False})
    )
    summary = run_job(tiny_t5_dir, tmp_path / "in.jsonl", folder, shard_rows=15, skip_invalid=True)
    assert summary.embedded_now == 49 - 15
    assert read_output(folder)[0] == ids
    assert (folder / "notes.txt").read_text() == "mine" and (folder / "mine" / "data.bin").read_bytes() == b"\x00"
    assert (folder / ".hidden").exists() and (folder / "part-99.parquet.bak").exists()
    search(folder, ["topic 3"], model=tiny_model, faiss=True)  # the same shards again: the index is reused
    assert (folder / "_faiss" / "index.faiss").stat().st_mtime_ns == built


def test_overwrite_removes_only_the_jobs_files_and_refuses_a_folder_no_job_made(tiny_t5_dir, tmp_path):
    folder, _, _ = finished_job(tiny_t5_dir, tmp_path)
    (folder / "notes.txt").write_text("mine")
    run_job(tiny_t5_dir, tmp_path / "in.jsonl", folder, shard_rows=25, overwrite=True, skip_invalid=True)
    assert (folder / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in folder.glob("part-*")) == ["part-00000.parquet", "part-00001.parquet"]
    other = tmp_path / "photos"
    other.mkdir()
    (other / "holiday.jpg").write_bytes(b"\xff\xd8")
    for overwrite in (False, True):
        with pytest.raises(InputError, match="not empty and holds no job"):
            run_job(tiny_t5_dir, tmp_path / "in.jsonl", other, overwrite=overwrite, skip_invalid=True)
    assert os.listdir(other) == ["holiday.jpg"]


def test_a_second_job_on_the_same_folder_stops_at_once_naming_the_holder(tiny_t5_dir, tmp_path):
    write_input(tmp_path / "in.jsonl", 20)
    folder = JobFolder(tmp_path / "out")
    with folder.locked(), pytest.raises(InputError, match=rf"another job \(pid {os.getpid()}\) is writing"):
        run_job(tiny_t5_dir, tmp_path / "in.jsonl", tmp_path / "out")


@pytest.mark.slow
def test_the_lock_holds_against_another_process_and_dies_with_it(tiny_t5_dir, tmp_path):
    """A job stopped (SIGSTOP) after its first shard holds the lock; a second job stops at once naming its pid;
    once the first is killed, the OS releases the lock and the same command finishes the job."""
    write_input(tmp_path / "in.jsonl", 120)
    command = [sys.executable, "-m", "instructor_embed", "encode", "--model", str(tiny_t5_dir), "--device", "cpu"]
    command += ["--input", str(tmp_path / "in.jsonl"), "--output", str(tmp_path / "out"), "--shard-rows", "40"]
    command += ["--instruction", INSTRUCTION, "--quiet"]
    first = subprocess.Popen(command, env={**os.environ, faults.VARIABLE: "manifest.renamed=stop@2"})
    try:
        deadline = time.monotonic() + 120
        while open(f"/proc/{first.pid}/stat").read().split(") ")[1][0] != "T":  # stopped after its first shard
            assert time.monotonic() < deadline and first.poll() is None
            time.sleep(0.05)
        second = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert second.returncode == 2 and f"another job (pid {first.pid}) is writing" in second.stderr
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    final = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert final.returncode == 0, final.stderr
    assert len(read_output(tmp_path / "out")[0]) == 120


def test_the_same_mode_chosen_on_another_machine_resumes_and_another_is_refused_by_field(
    tiny_t5_dir, tmp_path, monkeypatch
):
    """The identity holds the runtime as data: dtype="auto" picking bf16 on a BF16 CPU resumes a job begun with
    bf16 chosen by hand (the reason text, with the CPU's flags, differs); picking ONNX float32 is refused."""
    write_input(tmp_path / "in.jsonl", 30)
    monkeypatch.setenv("INSTRUCTOR_EMBED_CPU_FLAGS", "avx2 fma avx512f avx512_bf16")
    run_job(tiny_t5_dir, tmp_path / "in.jsonl", tmp_path / "out", dtype="bfloat16")
    manifest = json.loads((tmp_path / "out" / "_manifest.json").read_text())
    assert manifest["identity"]["runtime"] == {"dtype": "bfloat16", "backend": "torch", "quantize": None}
    (tmp_path / "out" / "_manifest.json").write_text(json.dumps({**manifest, "shards": [], "complete": False}))
    assert run_job(tiny_t5_dir, tmp_path / "in.jsonl", tmp_path / "out", dtype="auto").embedded_now == 30
    pytest.importorskip("onnxruntime")
    monkeypatch.setenv("INSTRUCTOR_EMBED_CPU_FLAGS", "avx2 fma")
    with pytest.raises(
        InputError, match=r"runtime\.dtype: 'bfloat16' -> 'float32'; runtime\.backend: 'torch' -> 'onnx'"
    ):
        run_job(tiny_t5_dir, tmp_path / "in.jsonl", tmp_path / "out", dtype="auto")


def test_the_model_is_known_by_its_files_not_its_path(tiny_t5_dir, tmp_path):
    write_input(tmp_path / "in.jsonl", 30)
    run_job(tiny_t5_dir, tmp_path / "in.jsonl", tmp_path / "out")
    moved = shutil.copytree(tiny_t5_dir, tmp_path / "elsewhere" / "model")
    assert run_job(moved, tmp_path / "in.jsonl", tmp_path / "out").embedded_now == 0  # the same files: resumes
    from safetensors.torch import load_file, save_file

    weights = load_file(moved / "model.safetensors")
    first = sorted(weights)[0]
    weights[first] = weights[first] + 0.01  # a retrained checkpoint saved at the same path
    save_file(weights, str(moved / "model.safetensors"))
    with pytest.raises(InputError, match="model: the checkpoint's files differ"):
        run_job(moved, tmp_path / "in.jsonl", tmp_path / "out")


def legacy_copy(tmp_path) -> tuple[Path, Path]:
    shutil.copy(LEGACY / "input.jsonl", tmp_path / "input.jsonl")
    return tmp_path / "input.jsonl", Path(shutil.copytree(LEGACY / "job", tmp_path / "job"))


def legacy_job(tiny_t5_dir, source, folder, **options):
    settings = dict(instruction="Represent the sentence: ", shard_rows=5, skip_invalid=True)
    return run_job(tiny_t5_dir, source, folder, **{**settings, **options})


def test_an_unfinished_0_1_folder_is_migrated_and_finished(tiny_t5_dir, tmp_path):
    """A checked-in folder of instructor-embed 0.1, cut back as a kill after its second shard leaves it, with a
    stale fixed-name temporary and a file of the user's: resumed, it ends as a fresh job ends."""
    source, folder = legacy_copy(tmp_path)
    manifest = json.loads((folder / "manifest.json").read_text())
    (folder / "manifest.json").write_text(json.dumps({**manifest, "shards": manifest["shards"][:2], "complete": False}))
    (folder / "part-00002.parquet").unlink()
    (folder / ".part-00002.parquet.tmp").write_bytes(b"half")
    (folder / "notes.txt").write_text("mine")
    summary = legacy_job(tiny_t5_dir, source, folder)
    assert summary.embedded_now == 2 and summary.rows == 12
    legacy_job(tiny_t5_dir, source, tmp_path / "fresh")
    ids, vectors = read_output(folder)
    fresh_ids, fresh = read_output(tmp_path / "fresh")
    assert ids == fresh_ids and np.abs(vectors - fresh).max() <= 1e-6
    assert sorted(os.listdir(folder)) == [
        "_faiss",
        "_invalid_rows.jsonl",
        "_lock",
        "_manifest.json",
        "notes.txt",
        "part-00000.parquet",
        "part-00001.parquet",
        "part-00002.parquet",
    ]
    assert json.loads((folder / "_manifest.json").read_text())["format"] == 2
    (folder / "notes.txt").unlink()
    assert pq.read_table(folder).num_rows == 12  # readable as a dataset now


def test_a_finished_0_1_folder_keeps_its_faiss_index_and_refuses_other_settings(tiny_t5_dir, tiny_model, tmp_path):
    source, folder = legacy_copy(tmp_path)
    with pytest.raises(InputError, match="other settings .*instruction: 'Represent the sentence: ' -> 'Other: '"):
        legacy_job(tiny_t5_dir, source, folder, instruction="Other: ")
    assert (folder / "manifest.json").exists() and not (folder / "_manifest.json").exists()  # refused: untouched
    assert legacy_job(tiny_t5_dir, source, folder).embedded_now == 0
    pytest.importorskip("faiss")
    from instructor_embed.bulk.search import search

    index = folder / "_faiss" / "index.faiss"
    built = index.stat().st_mtime_ns
    hits = search(folder, ["topic 1"], k=3, model=tiny_model, faiss=True)
    assert index.stat().st_mtime_ns == built and [hit.id for hit in hits[0]] == ["doc-1", "doc-4", "doc-10"]


@pytest.mark.slow
def test_ray_data_reads_the_folder_as_a_dataset(tiny_t5_dir, tmp_path):
    ray = pytest.importorskip("ray")
    folder, ids, vectors = finished_job(tiny_t5_dir, tmp_path)
    (folder / ".part-00009.parquet.1-ab.partial").write_bytes(b"a killed write")  # hidden: skipped as well
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        rows = ray.data.read_parquet(str(folder)).take_all()
    finally:
        ray.shutdown()
    got = {row["id"]: np.asarray(row["embedding"], dtype=np.float32) for row in rows}
    assert len(rows) == len(ids) and all(np.array_equal(got[i], v) for i, v in zip(ids, vectors, strict=True))
