"""The ``instructor-embed`` command line: a thin layer over the library, one module per command.

Building the parser imports no torch and none of the layers above the core, so ``--help`` answers at once
and Ctrl-C in the first second never lands inside torch's import.
"""

from __future__ import annotations

import argparse
import sys

from .. import __version__
from ..errors import InstructorEmbedError
from . import encode, evaluate, export, mine, search, serve, train

COMMANDS = {
    "encode": encode,
    "train": train,
    "mine": mine,
    "evaluate": evaluate,
    "serve": serve,
    "search": search,
    "export": export,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="instructor-embed",
        description="Instruction-conditioned text embeddings (INSTRUCTOR).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS.values():
        command.add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run a command; errors meant for people become one line on stderr and exit code 2 (130 on Ctrl-C)."""
    try:
        args = build_parser().parse_args(argv)
        _quiet_third_parties(args.quiet)
        return COMMANDS[args.command].run(args)
    except InstructorEmbedError as exc:
        print(f"instructor-embed: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:  # a bulk job says what it kept; other commands write nothing half-done
        print(f"instructor-embed: {str(exc) or 'interrupted; no output written'}", file=sys.stderr)
        return 130


# Loggers of packages that report, at every start, things that do not concern a user of this command:
# torchao's optional CUDA kernels it cannot load on a CPU machine, torch's deprecation notes about them.
_NOISY_LOGGERS = ("torchao", "torch.utils._pytree")


def _quiet_third_parties(quiet: bool) -> None:
    """A normal run prints what helps (our progress, results, warnings that need action); ``--quiet`` prints
    errors only: no progress bars, including transformers' weight-loading bar."""
    import logging

    for name in _NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    if quiet:
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()
