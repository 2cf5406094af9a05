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
