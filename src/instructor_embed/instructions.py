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

from .errors import InputError, InputTypeError

__all__ = ["instruction"]


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
