"""Fault injection for bulk jobs: a failure at every step of the commit protocol, SIGKILLs at seeded random
moments, a full disk, damaged shards and manifests, a manifest edited by hand, Ctrl-C.

Every re-run either converges to the complete, identical output (same rows, same vectors, every id once), or
stops with one clear message saying what cannot be repaired and how to start over.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from budget import seeds

from instructor_embed import InputError, OutputError, faults

pq = pytest.importorskip("pyarrow.parquet")
sys.path.insert(0, str(Path(__file__).parents[1] / "bulk"))
from test_job import INSTRUCTION, read_output, run_job, write_input  # noqa: E402

ROWS, SHARD_ROWS = 90, 20
STEPS = ["shard.written", "shard.renamed", "manifest.written", "manifest.renamed"]

pytestmark = pytest.mark.slow  # make test runs these; the quick loop (-m "not slow") does not


@pytest.fixture(scope="module")
def straight(tiny_t5_dir, tmp_path_factory):
    """The input and the output of one uninterrupted run: what every faulted run must end as."""
    folder = tmp_path_factory.mktemp("straight")
    write_input(folder / "in.jsonl", ROWS)
    run_job(tiny_t5_dir, folder / "in.jsonl", folder / "out", shard_rows=SHARD_ROWS)
    return folder / "in.jsonl", *read_output(folder / "out")


def converged(folder: Path, straight) -> None:
    _, ids, vectors = straight
    got_ids, got = read_output(folder)
    assert got_ids == ids and len(set(got_ids)) == ROWS
    assert np.abs(got - vectors).max() <= 1e-6
    assert json.loads((folder / "_manifest.json").read_text())["complete"]
    assert not [name for name in os.listdir(folder) if name.startswith(".")], "no temporary is left"


@pytest.mark.parametrize("step", STEPS)
@pytest.mark.parametrize("action", ["raise", "enospc"])
def test_a_failure_at_each_commit_step_then_a_rerun_converges(tiny_t5_dir, tmp_path, straight, step, action):
    source = straight[0]
    with faults.armed(step, action, at=3):  # during the third shard's commit (the first manifest write is at 1)
        with pytest.raises(OutputError if action == "enospc" else OSError) as caught:
            run_job(tiny_t5_dir, source, tmp_path / "out", shard_rows=SHARD_ROWS)
    if action == "enospc":
        message = str(caught.value)
        assert "cannot write" in message and "are committed and kept" in message
        assert "run the same command again to continue" in message
    run_job(tiny_t5_dir, source, tmp_path / "out", shard_rows=SHARD_ROWS)
    converged(tmp_path / "out", straight)


@pytest.mark.slow
@pytest.mark.parametrize("step", STEPS)
def test_a_kill_at_each_commit_step_then_a_rerun_converges(tiny_t5_dir, tmp_path, straight, step):
    """The kill leaves what a crash leaves (the temporary files too): each window is hit every time."""
    command = encode_command(tiny_t5_dir, straight[0], tmp_path / "out")
    killed = subprocess.run(command, env={**os.environ, faults.VARIABLE: f"{step}=kill@3"}, timeout=120)
    assert killed.returncode == -signal.SIGKILL
    final = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert final.returncode == 0, final.stderr
    converged(tmp_path / "out", straight)


def encode_command(model_dir, source, output) -> list[str]:
    command = [sys.executable, "-m", "instructor_embed", "encode", "--model", str(model_dir), "--device", "cpu"]
    command += ["--input", str(source), "--output", str(output), "--instruction", INSTRUCTION]
    return command + ["--shard-rows", str(SHARD_ROWS), "--quiet"]


@pytest.mark.slow
def test_sigkills_at_seeded_random_moments_then_a_rerun_converges(tiny_t5_dir, tmp_path, straight):
    """Real SIGKILLs from outside, each at a seeded random moment of a run (start-up included), on one folder;
    then the same command once more finishes the job (3 kills in make test, 25 in make fuzz)."""
    command = encode_command(tiny_t5_dir, straight[0], tmp_path / "out")
    started = time.monotonic()
    assert subprocess.run(command, timeout=120).returncode == 0  # one clean run measures how long a run takes
    duration = time.monotonic() - started
    shutil.rmtree(tmp_path / "out")
    for seed in seeds(3, 25):
        delay = random.Random(seed).uniform(0.2, duration)
        process = subprocess.Popen(command)
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.wait()
        print(f"seed {seed}: killed after {delay:.2f} s (exit {process.returncode})")
    final = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert final.returncode == 0, final.stderr
    converged(tmp_path / "out", straight)


def test_a_real_full_disk_stops_the_job_with_what_is_kept(tiny_t5_dir, tmp_path, straight):
    """A tmpfs too small for the job (CI runs as root); the job stops with a clear message and keeps its shards;
    moved to a disk with room (the same folder copied), the same job finishes."""
    disk = tmp_path / "small-disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=160k", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.decode().strip()}")
    try:
        with pytest.raises(OutputError, match="No space left on device.*are committed and kept") as caught:
            run_job(tiny_t5_dir, straight[0], disk / "out", shard_rows=SHARD_ROWS)
        assert caught.value.path == str(disk / "out")
        kept = read_output(disk / "out")[0]
        assert 0 < len(kept) < ROWS
        assert not [name for name in os.listdir(disk / "out") if name.startswith(".")]
        shutil.copytree(disk / "out", tmp_path / "out")
    finally:
        subprocess.run(["umount", str(disk)], check=True)
    run_job(tiny_t5_dir, straight[0], tmp_path / "out", shard_rows=SHARD_ROWS)
    converged(tmp_path / "out", straight)


@pytest.mark.parametrize("damage", ["truncated", "bit flip", "deleted", "replaced by a folder"])
def test_a_damaged_shard_is_redone_with_every_shard_after_it(tiny_t5_dir, tmp_path, straight, damage):
    source = straight[0]
    run_job(tiny_t5_dir, source, tmp_path / "out", shard_rows=SHARD_ROWS)
    shard = tmp_path / "out" / "part-00002.parquet"
    data = bytearray(shard.read_bytes())
    if damage == "truncated":
        shard.write_bytes(data[: len(data) // 2])
    elif damage == "bit flip":
        data[len(data) // 2] ^= 0x10
        shard.write_bytes(bytes(data))
    else:
        shard.unlink()
        if damage == "replaced by a folder":
            shard.mkdir()
            (shard / "x").write_text("")
    if damage == "replaced by a folder":  # not the job's to delete: the job stops, saying what it keeps
        with pytest.raises(OutputError, match="cannot write part-00002.parquet .*2 shards \\(40 of 90 rows\\)"):
            run_job(tiny_t5_dir, source, tmp_path / "out", shard_rows=SHARD_ROWS)
        return
    summary = run_job(tiny_t5_dir, source, tmp_path / "out", shard_rows=SHARD_ROWS)
    assert summary.embedded_now == ROWS - 2 * SHARD_ROWS
    converged(tmp_path / "out", straight)


EDITS = {
    "not JSON": lambda text: text[: len(text) // 2],
    "a list": lambda text: "[]",
    "format 7": lambda text: json.dumps({**json.loads(text), "format": 7}),
    "shards not a list": lambda text: json.dumps({**json.loads(text), "shards": {"a": 1}}),
    "a shard outside the folder": lambda text: _edit_shard(text, file="../../etc/passwd"),
    "a shard with other rows": lambda text: _edit_shard(text, start=3),
    "a shard record of another type": lambda text: _edit_shard(text, sha256=5),
    "no identity": lambda text: json.dumps({k: v for k, v in json.loads(text).items() if k != "identity"}),
}


def _edit_shard(text: str, **changes) -> str:
    manifest = json.loads(text)
    manifest["shards"][1] |= changes
    return json.dumps(manifest)


@pytest.mark.parametrize("edit", list(EDITS))
def test_a_damaged_or_hand_edited_manifest_stops_with_how_to_start_over(tiny_t5_dir, tmp_path, straight, edit):
    source = straight[0]
    run_job(tiny_t5_dir, source, tmp_path / "out", shard_rows=SHARD_ROWS)
    manifest = tmp_path / "out" / "_manifest.json"
    manifest.write_text(EDITS[edit](manifest.read_text()))
    before = sorted(os.listdir(tmp_path / "out"))
    with pytest.raises(InputError, match="cannot be trusted. Pass --overwrite") as caught:
        run_job(tiny_t5_dir, source, tmp_path / "out", shard_rows=SHARD_ROWS)
    assert caught.value.path == str(tmp_path / "out")
    assert sorted(os.listdir(tmp_path / "out")) == before  # refused: nothing touched
    run_job(tiny_t5_dir, source, tmp_path / "out", shard_rows=SHARD_ROWS, overwrite=True)
    converged(tmp_path / "out", straight)


def test_hand_edits_a_job_can_repair_converge(tiny_t5_dir, tmp_path, straight):
    """Shards dropped from the record, or the record claiming completion: redone, not trusted."""
    source = straight[0]
    run_job(tiny_t5_dir, source, tmp_path / "out", shard_rows=SHARD_ROWS)
    path = tmp_path / "out" / "_manifest.json"
    manifest = json.loads(path.read_text())
    path.write_text(json.dumps({**manifest, "shards": manifest["shards"][:2], "complete": True, "rows": 3}))
    assert run_job(tiny_t5_dir, source, tmp_path / "out", shard_rows=SHARD_ROWS).embedded_now == ROWS - 40
    converged(tmp_path / "out", straight)
    identity = {**manifest["identity"], "normalize": True}
    path.write_text(json.dumps({**manifest, "identity": identity}))
    with pytest.raises(InputError, match="other settings \\(normalize: True -> False\\)"):
        run_job(tiny_t5_dir, source, tmp_path / "out", shard_rows=SHARD_ROWS)


@pytest.mark.slow
def test_ctrl_c_says_what_is_committed_and_the_same_command_continues(tiny_t5_dir, tmp_path, straight):
    command = encode_command(tiny_t5_dir, straight[0], tmp_path / "out")
    process = subprocess.Popen(
        command, stderr=subprocess.PIPE, text=True, env={**os.environ, faults.VARIABLE: "manifest.renamed=stop@3"}
    )
    deadline = time.monotonic() + 120
    while open(f"/proc/{process.pid}/stat").read().split(") ")[1][0] != "T":  # stopped after its second shard
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    process.send_signal(signal.SIGCONT)
    _, errors = process.communicate(timeout=60)
    assert process.returncode == 130
    assert "interrupted: 2 shards (40 of 90 rows) are committed" in errors
    assert "run the same command again to continue" in errors and "no output written" not in errors
    final = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert final.returncode == 0, final.stderr
    converged(tmp_path / "out", straight)
