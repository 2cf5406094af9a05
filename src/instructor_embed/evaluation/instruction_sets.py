"""Which instruction each evaluation task gets: the authors' sets, a user's file, or none."""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path

from ..errors import InputError
from ..records import read_json_object

Instruction = str | dict[str, str]  # one instruction, or {"query": ..., "corpus": ...} for retrieval/reranking


def builtin_sets() -> dict[str, dict[str, Instruction]]:
    """The INSTRUCTOR authors' per-task MTEB instructions, by model id (shipped as package data)."""
    return json.loads(files(__package__).joinpath("instructions.json").read_text(encoding="utf-8"))["models"]


def resolve_instructions(choice: str | None, model_id: str) -> dict[str, Instruction]:
    """``choice``: a model id of a built-in set, a JSON file of the same shape, ``"none"``, or None (the set
    matching ``model_id`` if there is one, else none)."""
    sets = builtin_sets()
    if choice is None:
        return sets.get(model_id.rstrip("/"), {})
    if choice == "none":
        return {}
    if choice in sets:
        return sets[choice]
    path = Path(choice)
    if not path.is_file():
        raise InputError(f"--instructions {choice!r}: not one of {sorted(sets)}, 'none', or an existing JSON file")
    loaded = read_json_object(path, "task names mapped to instructions")
    for task, value in loaded.items():
        if not is_instruction(value, pair_allowed=True):
            raise InputError(f"{path}: task {task!r} must map to a string or to {{'query': ..., 'corpus': ...}}")
    return loaded


def is_instruction(value: object, pair_allowed: bool) -> bool:
    """A string, or (where ``pair_allowed``) a ``{"query": str, "corpus": str}`` pair."""
    if isinstance(value, str):
        return True
    return (
        pair_allowed
        and isinstance(value, dict)
        and set(value) == {"query", "corpus"}
        and all(isinstance(v, str) for v in value.values())
    )


def instruction_for(instructions: dict[str, Instruction], task: str, side: str | None) -> str | None:
    """The instruction for one side ("query" or "corpus") of a task, or None to embed plain text."""
    value = instructions.get(task)
    if value is None or isinstance(value, str):
        return value
    return value["corpus" if side == "corpus" else "query"]
