"""The one durable write: a test per guarantee in instructor_embed.durable's docstring."""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys

import pytest

from instructor_embed import durable, faults


def test_the_content_appears_whole_and_no_temporary_is_left(tmp_path):
    target = tmp_path / "a.json"
    durable.write_text(target, "new")
    assert target.read_text() == "new" and os.listdir(tmp_path) == ["a.json"]


def test_the_file_gets_the_umasks_permissions_not_a_temporary_files(tmp_path):
    old = os.umask(0o027)
    try:
        durable.write_text(tmp_path / "a.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o640


@pytest.mark.parametrize("point", ["file.written", "file.renamed"])
def test_a_failure_at_each_step_leaves_the_old_file_or_the_new_one_and_no_temporary(tmp_path, point):
    target = tmp_path / "a.json"
    target.write_text("old")
    with faults.armed(point), pytest.raises(faults.FaultInjected):
        durable.write_text(target, "new")
    assert target.read_text() == ("old" if point == "file.written" else "new")
    assert os.listdir(tmp_path) == ["a.json"]


def test_a_writer_that_fails_with_a_full_disk_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "a.bin"
    target.write_bytes(b"old")

    def full_disk(path):
        path.write_bytes(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError) as caught:
        durable.write_file(target, full_disk)
    assert caught.value.errno == errno.ENOSPC
    assert target.read_bytes() == b"old" and os.listdir(tmp_path) == ["a.bin"]


def test_file_and_folder_are_fsynced_after_the_rename(tmp_path, monkeypatch):
    synced = []
    real = os.fsync

    def record(handle):
        synced.append(os.readlink(f"/proc/self/fd/{handle}"))
        real(handle)

    monkeypatch.setattr(os, "fsync", record)
    durable.write_text(tmp_path / "a.json", "x")
    assert len(synced) == 2
    assert os.path.basename(synced[0]).startswith(".a.json.") and synced[1] == str(tmp_path)


def test_temporary_names_are_hidden_unique_and_recognised(tmp_path):
    names = {durable.partial_name(tmp_path / "part-00001.parquet").name for _ in range(100)}
    assert len(names) == 100
    assert all(name.startswith(".part-00001.parquet.") and name.endswith(".partial") for name in names)
    assert {durable.partial_target(name) for name in names} == {"part-00001.parquet"}
    assert durable.partial_target("notes.partial") is None and durable.partial_target(".x.tmp") is None


def test_a_killed_writer_leaves_only_its_own_hidden_temporary(tmp_path):
    (tmp_path / "a.json").write_text("old")
    code = "from instructor_embed import durable; import sys; durable.write_text(sys.argv[1], 'new')"
    env = {**os.environ, faults.VARIABLE: "file.written=kill"}
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path / "a.json")], env=env)
    assert result.returncode == -9
    left = sorted(os.listdir(tmp_path))
    assert left[1] == "a.json" and (tmp_path / "a.json").read_text() == "old"
    assert durable.partial_target(left[0]) == "a.json"


def test_a_folder_is_published_in_one_step_replacing_the_old_one(tmp_path):
    final, partial = tmp_path / "checkpoint-4", tmp_path / ".checkpoint-4.partial"
    final.mkdir()
    (final / "old.txt").write_text("old")
    partial.mkdir()
    (partial / "weights.bin").write_bytes(b"w")
    with faults.armed("folder.written"), pytest.raises(faults.FaultInjected):
        durable.publish_folder(partial, final)
    assert os.listdir(final) == ["old.txt"] and partial.is_dir()  # a failure before the rename changes nothing
    durable.publish_folder(partial, final)
    assert os.listdir(final) == ["weights.bin"] and sorted(os.listdir(tmp_path)) == ["checkpoint-4"]
