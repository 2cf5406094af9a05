"""One durable write for every file this package publishes: a shard, a manifest, an ONNX export, a checkpoint.

The protocol (as Hadoop's output committer and SQLite's journal do it): write under a temporary name that no other
writer uses, in the target's own folder; flush and fsync the file; give it the permissions of any file the user
creates (the umask's, not a temporary file's 0600); rename it over the target in one step; fsync the folder, so that
the rename itself survives a power cut. Guarantees:

- a reader sees the old file or the new one, never a mix or a half;
- two writers of the same target never write into each other's temporary file; the last rename wins;
- a writer that fails, or is killed, leaves at most its own temporary file, named ``.{target}.{unique}.partial``
  (hidden, so data tools skip it), which :func:`partial_target` recognises for clean-up;
- the temporary file is removed when the write raises (``ENOSPC`` included).

Folders (a training checkpoint) publish the same way with :func:`publish_folder`: every file fsynced, then one
rename of the folder.

Each step passes a fault point (:mod:`instructor_embed.faults`), so tests can fail or kill a writer between any two.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path

from . import faults

PARTIAL_SUFFIX = ".partial"


def write_file(path: str | os.PathLike[str], write: Callable[[Path], object], *, fault: str = "file") -> None:
    """Publish ``path`` durably: ``write(temporary_path)`` writes the content, then the protocol above runs.

    ``fault`` names this kind of file in the fault points ``{fault}.written`` (the temporary file is complete)
    and ``{fault}.renamed`` (the target is in place, the folder not yet synced)."""
    path = Path(path)
    temporary = partial_name(path)
    try:
        write(temporary)
        faults.point(f"{fault}.written")
        _fsync_file(temporary)
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    faults.point(f"{fault}.renamed")
    fsync_folder(path.parent)


def write_bytes(path: str | os.PathLike[str], data: bytes, *, fault: str = "file") -> None:
    """Publish ``data`` as ``path`` (see :func:`write_file`)."""
    write_file(path, lambda temporary: temporary.write_bytes(data), fault=fault)


def write_text(path: str | os.PathLike[str], text: str, *, fault: str = "file") -> None:
    """Publish ``text`` as ``path``, UTF-8 (see :func:`write_file`)."""
    write_bytes(path, text.encode("utf-8"), fault=fault)


def publish_folder(partial: str | os.PathLike[str], final: str | os.PathLike[str], *, fault: str = "folder") -> None:
    """Make a folder written at ``partial`` appear as ``final`` in one step: every file in it is fsynced, then
    ``partial`` is renamed (an existing ``final`` is replaced) and the parent folder fsynced.

    A folder under a ``partial`` name is never mistaken for a finished one: readers look for ``final`` only."""
    partial, final = Path(partial), Path(final)
    for folder, _, files in os.walk(partial):
        for name in files:
            _fsync_file(Path(folder) / name)
        fsync_folder(Path(folder))
    faults.point(f"{fault}.written")
    if final.exists():
        retired = final.with_name(f".{final.name}.{secrets.token_hex(4)}.old")
        os.replace(final, retired)
        os.replace(partial, final)
        _remove_tree(retired)
    else:
        os.replace(partial, final)
    faults.point(f"{fault}.renamed")
    fsync_folder(final.parent)


def publish_into(partial: str | os.PathLike[str], folder: str | os.PathLike[str], *, last: str | None = None) -> None:
    """Move every entry of the folder ``partial`` into ``folder``, each in one rename (an existing entry of the
    same name is replaced), ``last`` last, then remove ``partial``: for a set of files that must sit beside others
    (a model saved into a training run's folder). Each file is whole; a crash midway leaves some entries new and
    the rest as they were, and ``last`` (the file readers open first) new only when every other entry is."""
    partial, folder = Path(partial), Path(folder)
    for directory, _, files in os.walk(partial):
        for name in files:
            _fsync_file(Path(directory) / name)
    names = sorted(os.listdir(partial), key=lambda name: name == last)
    for name in names:
        source, target = partial / name, folder / name
        if source.is_dir() and target.is_dir():
            retired = folder / f".{name}.{secrets.token_hex(4)}.old"
            os.replace(target, retired)
            os.replace(source, target)
            _remove_tree(retired)
        else:
            os.replace(source, target)
        faults.point(f"{name}.published")
    partial.rmdir()
    fsync_folder(folder)


def partial_name(path: Path) -> Path:
    """A temporary name for ``path`` in its own folder that no other writer, process or run picks."""
    return path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(6)}{PARTIAL_SUFFIX}")


def partial_target(name: str) -> str | None:
    """The target whose temporary file of :func:`write_file` ``name`` is (``.a.json.12-ab.partial`` → ``a.json``),
    or None for any other name."""
    if not (name.startswith(".") and name.endswith(PARTIAL_SUFFIX)):
        return None
    target, _, unique = name[1 : -len(PARTIAL_SUFFIX)].rpartition(".")
    return target if target and unique else None


def fsync_folder(folder: Path) -> None:
    """Flush a folder's entries (new names, renames) to disk; a no-op where folders cannot be opened (Windows)."""
    try:
        handle = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass  # some file systems refuse fsync on folders; the rename is still atomic
    finally:
        os.close(handle)


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as handle:
        handle.flush()
        os.fsync(handle.fileno())


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def _umask() -> int:
    """The process's umask, read without changing it where Linux tells it (setting it, even for a moment, would
    give another thread's new files the wrong permissions)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)  # elsewhere the only way to read it is to set it; put it straight back
    os.umask(mask)
    return mask
