import json

import numpy as np
import pytest
from scipy.stats import pearsonr

from instructor_embed import InputError
from instructor_embed.evaluation.billboard import billboard_score

INSTRUCTION = "Represent the image caption for retrieving duplicate captions: "


def write_corpus(root, hypotheses, references):
    folder = root / "text_evaluation" / "mscoco"
    folder.mkdir(parents=True)
    (folder / "mscoco_THumB-1.0.jsonl").write_text("".join(json.dumps(h) + "\n" for h in hypotheses))
    (folder / "mscoco_references.jsonl").write_text("".join(json.dumps(r) + "\n" for r in references))


def test_max_cosine_over_references_then_pearson(tiny_model, tmp_path):
    hypotheses = [
        {"seg_id": "a", "hyp": "a dog runs on grass", "human_score": 4.5},
        {"seg_id": "a", "hyp": "a cat sleeps", "human_score": 1.0},
        {"seg_id": "b", "hyp": "two men play chess", "human_score": 3.0},
        {"seg_id": "b", "hyp": "a red car", "human_score": 2.0},
    ]
    references = [
        {"seg_id": "a", "refs": ["a dog running on the grass", "a puppy in a field"]},
        {"seg_id": "b", "refs": ["two people playing chess"]},
    ]
    write_corpus(tmp_path, hypotheses, references)
    result = billboard_score(tiny_model, tmp_path, "Billboard-mscoco", INSTRUCTION)

    def vector(text):
        return tiny_model.encode([[INSTRUCTION, text]], normalize_embeddings=True)[0]

    refs = {r["seg_id"]: r["refs"] for r in references}
    expected = [max(float(vector(h["hyp"]) @ vector(ref)) for ref in refs[h["seg_id"]]) for h in hypotheses]
    manual = pearsonr(expected, [h["human_score"] for h in hypotheses]).statistic
    assert result["hypotheses"] == 4
    assert result["main_score"] == pytest.approx(manual, abs=1e-5)
    assert np.isfinite(result["pearson"])


def test_hypothesis_without_references_is_named(tiny_model, tmp_path):
    write_corpus(tmp_path, [{"seg_id": "zz", "hyp": "x", "human_score": 1}], [{"seg_id": "a", "refs": ["y"]}])
    with pytest.raises(InputError, match="1 hypotheses have no references"):
        billboard_score(tiny_model, tmp_path, "Billboard-mscoco", None)
