import json
from types import SimpleNamespace

import numpy as np
import pytest

from instructor_embed import InputError
from instructor_embed.evaluation.instruction_sets import builtin_sets, instruction_for, resolve_instructions

pytest.importorskip("mteb")


def test_builtin_sets_are_the_authors():
    sets = builtin_sets()
    assert set(sets) == {"hkunlp/instructor-base", "hkunlp/instructor-large", "hkunlp/instructor-xl"}
    assert [len(sets[name]) for name in sorted(sets)] == [67, 68, 67]
    # The authors' own strings, quirks included (lower case, and a trailing comma for xl).
    assert sets["hkunlp/instructor-large"]["STSBenchmark"] == "represent the statement: "
    assert sets["hkunlp/instructor-xl"]["STSBenchmark"] == "represent posts, "
    assert sets["hkunlp/instructor-base"]["MSMARCO"] == {
        "query": "Represent the question for retrieving supporting documents: ",
        "corpus": "Represent the document for retrieval: ",
    }


def test_builtin_sets_equal_the_shared_copy_of_the_authors_file():
    from support import shared_path

    source = shared_path("data/instructions/instructor_mteb_instructions.json")
    assert builtin_sets() == json.loads(source.read_text())


def test_resolution_rules(tmp_path):
    assert resolve_instructions(None, "hkunlp/instructor-large") == builtin_sets()["hkunlp/instructor-large"]
    assert resolve_instructions(None, "hkunlp/instructor-large/") == builtin_sets()["hkunlp/instructor-large"]
    assert resolve_instructions(None, "./my-model") == {}
    assert resolve_instructions("none", "hkunlp/instructor-large") == {}
    assert resolve_instructions("hkunlp/instructor-xl", "./mine") == builtin_sets()["hkunlp/instructor-xl"]
    mine = tmp_path / "mine.json"
    mine.write_text(json.dumps({"STS12": "Represent the sentence: ", "MSMARCO": {"query": "q: ", "corpus": "d: "}}))
    loaded = resolve_instructions(str(mine), "x")
    assert (
        instruction_for(loaded, "MSMARCO", "corpus") == "d: " and instruction_for(loaded, "MSMARCO", "query") == "q: "
    )
    assert instruction_for(loaded, "STS12", "corpus") == "Represent the sentence: "
    assert instruction_for(loaded, "Unknown", "query") is None
    mine.write_text(json.dumps({"STS12": 3}))
    with pytest.raises(InputError, match="task 'STS12' must map to a string"):
        resolve_instructions(str(mine), "x")
    with pytest.raises(InputError, match="not one of"):
        resolve_instructions("no-such-file.json", "x")


def test_adapter_gives_each_task_and_side_its_instruction(tiny_model):
    from instructor_embed.evaluation.mteb_adapter import MTEBEncoder

    instructions = {
        "STS12": "Represent the sentence: ",
        "MSMARCO": {"query": "Represent the question: ", "corpus": "Represent the document: "},
    }
    encoder = MTEBEncoder(tiny_model, "tiny", instructions)
    batches = [{"text": ["a cat", "a dog"]}, {"text": ["a bird"]}]
    texts = ["a cat", "a dog", "a bird"]

    def run(task, prompt_type=None):
        return encoder.encode(
            batches,
            task_metadata=SimpleNamespace(name=task),
            hf_split="test",
            hf_subset="default",
            prompt_type=prompt_type,
        )

    np.testing.assert_allclose(
        run("STS12"), tiny_model.encode([["Represent the sentence: ", t] for t in texts]), atol=1e-6
    )
    corpus = run("MSMARCO", SimpleNamespace(value="document"))
    np.testing.assert_allclose(corpus, tiny_model.encode([["Represent the document: ", t] for t in texts]), atol=1e-6)
    query = run("MSMARCO", SimpleNamespace(value="query"))
    np.testing.assert_allclose(query, tiny_model.encode([["Represent the question: ", t] for t in texts]), atol=1e-6)
    np.testing.assert_allclose(run("Other"), tiny_model.encode(texts), atol=1e-6)
    assert encoder.mteb_model_meta.use_instructions and encoder.mteb_model_meta.embed_dim == 768


@pytest.mark.slow
def test_cli_reports_a_failing_task_and_runs_the_rest(minilm_dir, tmp_path, capsys):
    from support import shared_path

    from instructor_embed.cli import main

    data_dir = shared_path("data")
    code = main(
        [
            "evaluate",
            "--model",
            str(minilm_dir),
            "--tasks",
            "SICK-R,NoSuchTask",
            "--output-dir",
            str(tmp_path),
            "--instructions",
            "none",
            "--data-dir",
            str(data_dir),
        ]
    )
    assert code == 1
    assert "failed:" in capsys.readouterr().err
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["SICK-R"]["main_score"] > 0.7 and "NoSuchTask" in results["NoSuchTask"]["error"]
