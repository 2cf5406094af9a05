"""``encode --engine ray`` killed at seeded random moments (driver, Ray's head and actors: one process group),
then run again: the output equals the local engine's (1 kill in make test, 20 in make fuzz)."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from budget import seeds

pytest.importorskip("ray")
pq = pytest.importorskip("pyarrow.parquet")
sys.path.insert(0, str(Path(__file__).parents[1] / "bulk"))
from test_job import INSTRUCTION, read_output, run_job, write_input  # noqa: E402

pytestmark = pytest.mark.slow


def run_group(command: list[str], seconds: float | None = None) -> subprocess.CompletedProcess | None:
    """Run ``command`` in its own process group; with ``seconds``, SIGKILL the whole group then."""
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        _, errors = process.communicate(timeout=seconds or 300)
        return subprocess.CompletedProcess(command, process.returncode, "", errors)
    except subprocess.TimeoutExpired:
        if seconds is None:
            raise
        return None
    finally:  # no Ray process outlives a run
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def test_seeded_kills_of_a_ray_job_then_a_rerun_equals_the_local_engine(tiny_t5_dir, tmp_path):
    write_input(tmp_path / "in.jsonl", 200)
    run_job(tiny_t5_dir, tmp_path / "in.jsonl", tmp_path / "local", instruction=INSTRUCTION, shard_rows=25)
    command = [sys.executable, "-m", "instructor_embed", "encode", "--model", str(tiny_t5_dir), "--device", "cpu"]
    command += ["--input", str(tmp_path / "in.jsonl"), "--instruction", INSTRUCTION, "--shard-rows", "25"]
    command += ["--output", str(tmp_path / "ray"), "--engine", "ray", "--num-workers", "2", "--batch-size", "2"]
    command += ["--quiet"]
    for seed in seeds(1, 20):
        delay = random.Random(seed).uniform(2.0, 12.0)
        started = time.monotonic()
        finished = run_group(command, seconds=delay)
        print(f"seed {seed}: {'finished' if finished else 'killed'} after {time.monotonic() - started:.1f} s")
    final = run_group(command)
    assert final.returncode == 0, final.stderr[-2000:]
    ids, vectors = read_output(tmp_path / "ray")
    local_ids, local = read_output(tmp_path / "local")
    assert ids == local_ids and len(set(ids)) == 200
    assert np.abs(vectors - local).max() <= 1e-6
