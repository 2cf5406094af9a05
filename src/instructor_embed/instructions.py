"""The INSTRUCTOR instruction template: "Represent the {domain} {text_type} for {task_objective}:".

>>> instruction("sentence")
'Represent the sentence:'
>>> instruction("title", domain="Science")
'Represent the Science title:'
>>> instruction("question", domain="Wikipedia", task_objective="retrieving supporting documents")
'Represent the Wikipedia question for retrieving supporting documents:'
>>> instruction("review", task_objective="classifying emotion")
'Represent the review for classifying emotion:'
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import InputError, InputTypeError

__all__ = ["RETRIEVAL", "InstructionPair", "instruction"]


@dataclass(frozen=True)
class InstructionPair:
    """The two instructions of an asymmetric task: one for queries, one for the documents they search."""

    query: str
    corpus: str


# The INSTRUCTOR authors' retrieval pair (their MSMARCO instructions), also the defaults of LangChain's
# HuggingFaceInstructEmbeddings: what encode_queries / encode_corpus use unless told otherwise.
RETRIEVAL = InstructionPair(
    query="Represent the question for retrieving supporting documents: ",
    corpus="Represent the document for retrieval: ",
)


def looks_like_instruction(text: str) -> bool:
    """Whether ``text`` reads like an INSTRUCTOR instruction ("Represent the ...:")."""
    stripped = text.strip()
    return stripped.lower().startswith("represent") and stripped.endswith((":", ","))


def instruction(text_type: str, domain: str | None = None, task_objective: str | None = None) -> str:
    """Build an instruction from the paper's unified template.

    Args:
        text_type: what the input is: "sentence", "question", "document", "title", "review", ...
        domain: optional field of the text: "Science", "Medicine", "Wikipedia", "Financial", ...
        task_objective: optional purpose, completing "for ...": "retrieval", "classifying emotion",
            "retrieving a duplicate sentence", ...
    """
    parts = {"text_type": text_type, "domain": domain, "task_objective": task_objective}
    for name, value in parts.items():
        if value is None and name != "text_type":
            continue
        if not isinstance(value, str):
            raise InputTypeError(f"{name} must be a string, not {type(value).__name__}")
        if not value.strip():
            raise InputError(f"{name} must not be empty")
    words = ["Represent the", domain, text_type.strip()]
    if task_objective is not None:
        words += ["for", task_objective.strip()]
    return " ".join(word.strip() for word in words if word) + ":"


SAVED_INSTRUCTIONS = "instructions.json"  # in a trained model's folder: the instructions it was trained with


@dataclass(frozen=True)
class TrainedInstructions:
    """The instructions a model was fine-tuned with, per task (``instructions.json`` in its folder).

    ``default``: the pair to use when a caller gives none — the one task's, or the pair every task shares;
    None when tasks differ (then choose per task from ``tasks``).
    """

    tasks: dict[str, InstructionPair]

    @property
    def default(self) -> InstructionPair | None:
        pairs = set(self.tasks.values())
        return next(iter(pairs)) if len(pairs) == 1 else None

    def to_json(self) -> dict:
        return {
            "tasks": {
                task: {"query": pair.query, "document": pair.corpus} for task, pair in sorted(self.tasks.items())
            },
            "default": None if self.default is None else {"query": self.default.query, "document": self.default.corpus},
        }

    @classmethod
    def from_json(cls, value: object, where: str) -> TrainedInstructions:
        tasks = value.get("tasks") if isinstance(value, dict) else None
        if not isinstance(tasks, dict) or not all(
            isinstance(pair, dict) and all(isinstance(pair.get(side), str) for side in ("query", "document"))
            for pair in tasks.values()
        ):
            raise InputError(f'{where}: expected {{"tasks": {{TASK: {{"query": ..., "document": ...}}}}}}')
        return cls({task: InstructionPair(pair["query"], pair["document"]) for task, pair in tasks.items()})
