"""save() writes the hkunlp layout; export_sentence_transformers() a copy current sentence-transformers reads."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from instructor_embed import INSTRUCTOR

ROOT = Path(__file__).resolve().parents[1]
ITEMS = [
    ["Represent the Science title:", "3D ActionSLAM: wearable person tracking in multi-floor environments"],
    ["Represent the Medicine sentence for retrieving a duplicate sentence: ", "  Aspirin lowers fever.  "],
    "a plain sentence",
]


def test_save_writes_the_hkunlp_layout(tiny_model, tmp_path):
    tiny_model.save(tmp_path)
    modules = json.loads((tmp_path / "modules.json").read_text())
    assert [(m["path"], m["type"].rsplit(".", 1)[-1]) for m in modules] == [
        ("", "Transformer"),
        ("1_Pooling", "Pooling"),
        ("2_Dense", "Dense"),
        ("3_Normalize", "Normalize"),
    ]
    pooling = json.loads((tmp_path / "1_Pooling" / "config.json").read_text())
    # InstructorEmbedding 1.0.1's pooling loader rejects any other key
    assert set(pooling) <= {
        "word_embedding_dimension",
        "pooling_mode_cls_token",
        "pooling_mode_mean_tokens",
        "pooling_mode_max_tokens",
        "pooling_mode_mean_sqrt_len_tokens",
        "pooling_mode_weightedmean_tokens",
        "pooling_mode_lasttoken",
    }
    assert (tmp_path / "model.safetensors").exists() and (tmp_path / "2_Dense" / "model.safetensors").exists()
    assert json.loads((tmp_path / "sentence_bert_config.json").read_text())["max_seq_length"] == 512
    assert (tmp_path / "spiece.model").exists()


def test_save_load_round_trip_is_exact(tiny_model, tmp_path):
    tiny_model.save(tmp_path)
    np.testing.assert_array_equal(INSTRUCTOR(tmp_path, device="cpu").encode(ITEMS), tiny_model.encode(ITEMS))


def test_bert_style_round_trip(minilm_model, tmp_path):
    minilm_model.save(tmp_path)
    reloaded = INSTRUCTOR(tmp_path, device="cpu")
    assert reloaded.max_seq_length == 256
    np.testing.assert_array_equal(reloaded.encode(ITEMS), minilm_model.encode(ITEMS))


def test_sentence_transformers_export_gives_the_same_vectors(tiny_model, tmp_path):
    sentence_transformers = pytest.importorskip("sentence_transformers")
    tiny_model.export_sentence_transformers(tmp_path)
    assert json.loads((tmp_path / "1_Pooling" / "config.json").read_text())["include_prompt"] is False
    st_model = sentence_transformers.SentenceTransformer(str(tmp_path), device="cpu")
    for instruction, text in ITEMS[:2]:
        ours = tiny_model.encode([[instruction, text]])
        theirs = st_model.encode([text], prompt=instruction)
        assert np.abs(ours - theirs).max() <= 1e-5


def _reference_python() -> Path:
    path = Path(os.environ.get("INSTRUCTOR_EMBED_REFERENCE_PYTHON", ROOT / ".venv-reference" / "bin" / "python"))
    if not path.exists():
        pytest.skip("no reference stack: run tools/make_parity_goldens.py or set INSTRUCTOR_EMBED_REFERENCE_PYTHON")
    return path


def test_original_package_loads_a_saved_model(tiny_model, tmp_path):
    """InstructorEmbedding 1.0.1 (in its own venv) reads what save() writes and gives the same vectors."""
    python = _reference_python()
    tiny_model.save(tmp_path / "model")
    code = (
        "import json, sys, numpy as np\n"
        "from InstructorEmbedding import INSTRUCTOR\n"
        "m = INSTRUCTOR(sys.argv[1], device='cpu')\n"
        "np.save(sys.argv[2], m.encode(json.loads(sys.argv[3])))\n"
    )
    pairs = [item for item in ITEMS if isinstance(item, list)]
    subprocess.run(
        [str(python), "-c", code, str(tmp_path / "model"), str(tmp_path / "v.npy"), json.dumps(pairs)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    assert np.abs(np.load(tmp_path / "v.npy") - tiny_model.encode(pairs)).max() <= 1e-5
