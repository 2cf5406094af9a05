"""Prompt retrieval with the LM in the loop: real Banking77 and STS-B rows, the real MiniLM embedder, and a tiny
randomly initialised causal LM built here (its answers are meaningless; the pipeline is real)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
from support import shared_path

from instructor_embed import InputError
from instructor_embed.evaluation.in_context import (
    MODES,
    PromptTask,
    answer,
    fit_prompt,
    load_prompt_task,
    run_prompt_task,
    score,
)
from instructor_embed.evaluation.prompt_retrieval import ExampleSelector

INSTRUCTION = "Represent the bank customer query for retrieving similar queries: "


def write_jsonl(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path.name


def banking_task(folder: Path, pool_size: int = 400, test_size: int = 24, **overrides) -> Path:
    data = shared_path("data/classification/banking77")
    with open(data / "train.csv", encoding="utf-8") as handle:
        pool = [{"input": r["text"], "output": r["category"]} for r in list(csv.DictReader(handle))[::25]]
    with open(data / "test.csv", encoding="utf-8") as handle:
        test = [{"input": r["text"], "output": r["category"]} for r in list(csv.DictReader(handle))[::120]]
    spec = {
        "name": "banking77-intents",
        "type": "prompt-retrieval",
        "pool": write_jsonl(folder / "pool.jsonl", pool[:pool_size]),
        "test": write_jsonl(folder / "test.jsonl", test[:test_size]),
        "template": "Query: {input}\nIntent: {output}",
        "metric": "accuracy",
        "instruction": INSTRUCTION,
        "k": 4,
        "max_new_tokens": 6,
        **overrides,
    }
    path = folder / "banking.json"
    path.write_text(json.dumps(spec), encoding="utf-8")
    return path


def stsb_task(folder: Path) -> Path:
    lines = shared_path("data/sts/stsbenchmark/sts-train.csv").read_text(encoding="utf-8").splitlines()
    pairs = [{"first": f[5], "second": f[6]} for f in (line.split("\t") for line in lines) if float(f[4]) >= 4]
    spec = {
        "name": "stsb-paraphrase",
        "type": "prompt-retrieval",
        "pool": write_jsonl(folder / "sts-pool.jsonl", pairs[:200]),
        "test": write_jsonl(folder / "sts-test.jsonl", pairs[200:212]),
        "input_field": "first",
        "output_field": "second",
        "template": "Sentence: {input}\nParaphrase: {output}",
        "metric": "rouge-l",
        "k": 2,
        "max_new_tokens": 12,
    }
    path = folder / "stsb.json"
    path.write_text(json.dumps(spec), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory, t5_tokenizer_dir) -> Path:
    """A 2-layer GPT-2 with random weights and the real T5 SentencePiece tokenizer, 160 positions of context."""
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    folder = tmp_path_factory.mktemp("tiny-lm")
    tokenizer = AutoTokenizer.from_pretrained(t5_tokenizer_dir)
    ids = dict(bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id)
    config = GPT2Config(vocab_size=len(tokenizer), n_positions=160, n_embd=32, n_layer=2, n_head=2, **ids)
    GPT2LMHeadModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


class NearestLabelLM:
    """A stand-in LM that answers with the output of the demonstration right before the query (the most similar
    one): its accuracy is that of the embedder's nearest neighbour, so selection must beat random."""

    context = None

    def length(self, prompt: str) -> int:
        return len(prompt.split())

    def complete(self, prompts, max_new_tokens):
        answers = []
        for prompt in prompts:
            blocks = prompt.split("\n\n")
            answers.append(blocks[-2].rsplit("Intent: ", 1)[1] + "\n\nQuery:" if len(blocks) > 1 else "no idea")
        return answers


@pytest.mark.slow
def test_similar_demonstrations_beat_random_and_zero_shot_with_an_lm_that_copies(minilm_model, tmp_path):
    task = load_prompt_task(banking_task(tmp_path))
    outcome = run_prompt_task(minilm_model, task, NearestLabelLM(), seed=3)
    scores = outcome["scores"]
    # 400 pool queries, ~5 per intent: the nearest one shares the intent about half the time, a random one 1/77
    assert scores["zero-shot"] == 0 and scores["random"] < 0.1 < 0.35 < scores["similar"]
    selector = ExampleSelector(minilm_model, [example[0] for example in task.pool], instruction=INSTRUCTION)
    nearest, _ = selector.select([example[0] for example in task.test], task.k)
    record = outcome["predictions"][0]
    assert record["similar"]["demonstrations"] == list(nearest[0])
    assert record["reference"] == task.test[0][1] and len(record["random"]["demonstrations"]) == task.k


@pytest.mark.slow
def test_the_cli_runs_prompt_retrieval_end_to_end_with_a_real_causal_lm(minilm_dir, tiny_lm, tmp_path):
    specs = [banking_task(tmp_path), stsb_task(tmp_path)]
    output = tmp_path / "out"
    done = subprocess.run(
        [
            *(sys.executable, "-m", "instructor_embed", "evaluate", "--model", str(minilm_dir), "--quiet"),
            *("--prompt-retrieval", *map(str, specs), "--lm", str(tiny_lm), "--output-dir", str(output)),
            *("--lm-batch-size", "5"),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads((output / "prompt_retrieval.json").read_text())
    results = report["results"][str(minilm_dir)]
    assert set(results) == {"banking77-intents", "stsb-paraphrase"}
    for outcome in results.values():
        assert set(outcome["scores"]) == set(MODES) and all(0 <= v <= 1 for v in outcome["scores"].values())
        lines = (output / outcome["predictions"]).read_text().splitlines()
        assert len(lines) == outcome["examples"]
        record = json.loads(lines[0])
        assert all(isinstance(record[mode]["prediction"], str) for mode in MODES)
    # 160 positions hold fewer than 4 Banking77 demonstrations for some queries: the least similar were dropped
    kept = [len(json.loads(line)["similar"]["demonstrations"]) for line in (output / results["banking77-intents"]["predictions"]).read_text().splitlines()]  # fmt: skip
    assert min(kept) < 4 and max(kept) >= 1
    assert "| banking77-intents | accuracy | 4 |" in (output / "prompt_retrieval.md").read_text()
    assert "zero-shot" in done.stderr


class CountingLM:
    def __init__(self, context: int):
        self.context = context

    def length(self, prompt: str) -> int:
        return len(prompt.split())


def test_prompts_drop_the_least_similar_demonstrations_to_fit_and_name_an_item_that_cannot():
    pool = [("one two three", "a"), ("four five", "b"), ("six", "c")]
    task = PromptTask("t", pool, [("q r s t u", "x")], "{input} => {output}", "accuracy", k=3, max_new_tokens=2)
    prompt, kept = fit_prompt(CountingLM(context=17), task, [0, 1, 2], 0)
    assert kept == [0, 1] and prompt == "four five => b\n\none two three => a\n\nq r s t u =>"
    with pytest.raises(InputError, match="t: test item 0: its prompt alone is 6 tokens, more than .* context of 7"):
        fit_prompt(CountingLM(context=7), task, [0, 1, 2], 0)


def test_answers_are_cut_at_the_next_demonstration_and_scored():
    assert answer(" card_arrival\nmore\n\nQuery: x", "accuracy") == "card_arrival"
    assert answer(" the cat sat\non the mat\n\nSentence: y", "rouge-l") == "the cat sat\non the mat"
    assert score(["Card_Arrival", "x"], ["card_arrival", "y"], "accuracy") == 0.5
    pytest.importorskip("rouge_score")
    assert score(["the cat sat on the mat"], ["a cat sat on a mat"], "rouge-l") == pytest.approx(2 / 3)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"template": "Query: {input}"}, "template must contain {input} and exactly one {output}"),
        ({"metric": "bleu"}, "metric must be one of rouge-l, accuracy"),
        ({"type": "sts"}, "type is 'sts'; a prompt-retrieval spec has type 'prompt-retrieval'"),
        ({"k": 0}, "k must be a positive integer"),
        ({"k": 500}, "k is 500 but the pool has 400 examples"),
    ],
)
def test_bad_specs_are_named(tmp_path, change, message):
    with pytest.raises(InputError, match=message):
        load_prompt_task(banking_task(tmp_path, **change))


def test_a_bad_row_is_named_with_its_line(tmp_path):
    spec = banking_task(tmp_path)
    with open(tmp_path / "test.jsonl", "a", encoding="utf-8") as handle:
        handle.write(json.dumps({"input": "no output here"}) + "\n")
    lines = len((tmp_path / "test.jsonl").read_text().splitlines())
    with pytest.raises(InputError, match=rf"test.jsonl, line {lines}: needs string fields 'input' and 'output'"):
        load_prompt_task(spec)


def test_the_cli_says_what_prompt_retrieval_needs(tmp_path, capsys):
    from instructor_embed.cli import main

    assert main(["evaluate", "--model", "m", "--output-dir", str(tmp_path)]) == 2
    assert "give --tasks, --prompt-retrieval, or both" in capsys.readouterr().err
    spec = str(banking_task(tmp_path))
    assert main(["evaluate", "--model", "m", "--prompt-retrieval", spec, "--output-dir", str(tmp_path)]) == 2
    assert "--prompt-retrieval needs --lm" in capsys.readouterr().err
