"""Deterministic fault injection: named points in the write protocols where a test makes the process fail.

Every step of a commit protocol calls :func:`point` with its name (``shard.written``, ``shard.renamed``,
``manifest.written``, ``manifest.renamed``, ...). Nothing happens unless a test arms the point, so a test hits
the window between two steps every time, in milliseconds, instead of by luck:

    with faults.armed("shard.renamed", "raise"):        # in this process
        embed_file(config)                              # raises FaultInjected right after a shard's rename

    INSTRUCTOR_EMBED_FAULTS="manifest.written=kill@3"   # a subprocess: SIGKILL itself the 3rd time it gets there

Actions: ``raise`` (:class:`FaultInjected`, an ``OSError``), ``enospc`` (``OSError(ENOSPC)``, a full disk),
``kill`` (``SIGKILL`` to this process: no clean-up runs, as in a crash), ``stop`` (``SIGSTOP``: the process
hangs where it is, holding what it holds, until a test continues or kills it). ``@n`` fires on the n-th pass (default
the first); a point fires once, or, with ``@n+``, on every pass from the n-th on. For tests only; an unarmed point costs one dict lookup.
"""

from __future__ import annotations

import errno
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager

VARIABLE = "INSTRUCTOR_EMBED_FAULTS"
ACTIONS = ("raise", "enospc", "kill", "stop")


class FaultInjected(OSError):
    """The failure an armed fault point raises."""


def _parse(value: str) -> dict[str, list]:
    armed = {}
    for entry in filter(None, (part.strip() for part in value.split(","))):
        name, _, rest = entry.partition("=")
        action, _, count = rest.partition("@")
        if action not in ACTIONS:
            raise ValueError(f"{VARIABLE}: {entry!r}: the action must be one of {', '.join(ACTIONS)}")
        armed[name] = [action, int(count.removesuffix("+") or 1), count.endswith("+")]
    return armed


_ARMED: dict[str, list] = _parse(os.environ.get(VARIABLE, ""))


def point(name: str) -> None:
    """A step of a protocol has just completed; fail here if a test armed ``name``."""
    if not _ARMED:
        return
    entry = _ARMED.get(name)
    if entry is None:
        return
    entry[1] -= 1
    if entry[1] > 0:
        return
    if not entry[2]:
        del _ARMED[name]
    action = entry[0]
    if action in ("kill", "stop"):
        os.kill(os.getpid(), signal.SIGKILL if action == "kill" else signal.SIGSTOP)
        return
    if action == "enospc":
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC) + f" (injected at {name})")
    raise FaultInjected(f"fault injected at {name}")


@contextmanager
def armed(name: str, action: str = "raise", at: int = 1) -> Iterator[None]:
    """Arm ``name`` with ``action`` on its ``at``-th pass while the block runs (disarmed after, fired or not)."""
    if action not in ACTIONS:
        raise ValueError(f"action must be one of {', '.join(ACTIONS)}")
    _ARMED[name] = [action, at, False]
    try:
        yield
    finally:
        _ARMED.pop(name, None)
