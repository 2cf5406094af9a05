import json
from pathlib import Path

import pytest

QUESTIONS = [
    ("What is the capital of France?", "Paris is the capital of France.", "Bananas are rich in potassium."),
    ("How do plants make food?", "Plants make food by photosynthesis.", "The stock market fell on Monday."),
    ("Who wrote Hamlet?", "Hamlet was written by Shakespeare.", "Water boils at 100 degrees."),
    ("What causes rain?", "Rain forms when water vapour condenses.", "The guitar has six strings."),
]
PAIRS = [
    ("A man is playing a guitar.", "A man plays the guitar.", "A woman is slicing an onion."),
    ("Kids are running in a park.", "Children run in the park.", "A cat sleeps on the sofa."),
    ("The plane is taking off.", "An airplane departs.", "A chef is cooking pasta."),
    ("A dog catches a ball.", "The dog caught the ball.", "Two men are fighting."),
]


TASKS = [  # task, query instruction, document instruction, (query, positive, negative) triples
    (
        "qa",
        "Represent the question for retrieving supporting answers: ",
        "Represent the answer for retrieval: ",
        QUESTIONS,
    ),
    ("sts", STS := "Represent the sentence for retrieving duplicate sentences: ", STS, PAIRS),
]


def medi_rows(repeat: int = 2) -> list[dict]:
    return [
        {
            "query": [query_instruction, q],
            "pos": [document_instruction, p],
            "neg": [document_instruction, n],
            "task_name": task,
        }
        for _ in range(repeat)
        for task, query_instruction, document_instruction, triples in TASKS
        for q, p, n in triples
    ]


@pytest.fixture
def medi_file(tmp_path) -> Path:
    path = tmp_path / "medi.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in medi_rows()))
    return path
