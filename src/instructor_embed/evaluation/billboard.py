"""Billboard text-generation evaluation (THumB 1.0: cnndm summaries, mscoco captions).

Each hypothesis and each of its references are embedded with the task's instruction; a hypothesis scores
the maximum cosine over its references; the task's score is the Pearson correlation of those scores with
``human_score`` over all hypotheses.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import InputError
from ..model import INSTRUCTOR
from ..records import iter_jsonl

# Our instructions from the paper's template (the authors' Billboard instructions are not in the shared set);
# override them with a JSON instruction file keyed by these task names.
BILLBOARD_INSTRUCTIONS = {
    "Billboard-cnndm": "Represent the news summary for retrieving duplicate summaries: ",
    "Billboard-mscoco": "Represent the image caption for retrieving duplicate captions: ",
}


def billboard_score(
    model: INSTRUCTOR, data_dir: Path, name: str, instruction: str | None, batch_size: int = 32
) -> dict:
    """``{"main_score": pearson, "pearson": ..., "hypotheses": n}`` for ``name`` = ``Billboard-cnndm`` or ``-mscoco``."""
    from scipy.stats import pearsonr

    corpus = name.removeprefix("Billboard-")
    folder = data_dir / "text_evaluation" / corpus
    hypotheses = _jsonl(folder / f"{corpus}_THumB-1.0.jsonl")
    references = {row["seg_id"]: row["refs"] for row in _jsonl(folder / f"{corpus}_references.jsonl")}
    missing = [h["seg_id"] for h in hypotheses if h["seg_id"] not in references]
    if missing:
        raise InputError(f"{folder}: {len(missing)} hypotheses have no references (first seg_id {missing[0]!r})")
    texts = list(dict.fromkeys([h["hyp"] for h in hypotheses] + [r for refs in references.values() for r in refs]))
    items = texts if instruction is None else [[instruction, text] for text in texts]
    vectors = model.encode(items, batch_size=batch_size, normalize_embeddings=True)
    position = {text: index for index, text in enumerate(texts)}
    scores = [
        max(float(vectors[position[h["hyp"]]] @ vectors[position[ref]]) for ref in references[h["seg_id"]])
        for h in hypotheses
    ]
    pearson = float(pearsonr(scores, [float(h["human_score"]) for h in hypotheses]).statistic)
    return {"main_score": pearson, "pearson": pearson, "hypotheses": len(hypotheses)}


def _jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        raise InputError(f"missing Billboard file {path}")
    with open(path, encoding="utf-8") as handle:
        return [row for _, row in iter_jsonl(handle, path)]
