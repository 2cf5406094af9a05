"""The benchmarks' own logic: result files named as their options say; the ablation's mined negatives and task weights."""

import importlib.util
import json
from pathlib import Path

import pytest

from instructor_embed.hardware import detect

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load(script: str):
    spec = importlib.util.spec_from_file_location(script, BENCHMARKS / f"{script}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_ablation_result_files_keep_a_tag_with_a_dot():
    # "--tag tau0.01" once wrote instruction-ablation-tau0.json: Path.with_suffix cut the name at the tag's dot
    files = load("instruction_ablation").result_files("tau0.01")
    stem = f"instruction-ablation-tau0.01-{detect('cpu').signature()}"
    assert files == {kind: BENCHMARKS / "results" / f"{stem}.{kind}" for kind in ("json", "md", "png")}


def test_result_names_carry_the_tag_whole_and_refuse_a_path():
    module = load("instruction_ablation")
    machine = detect("cpu").signature()
    assert (
        module.result_stem("instruction-sensitivity-seen", "twins0.1")
        == f"instruction-sensitivity-seen-twins0.1-{machine}"
    )
    assert module.result_stem("instruction-sensitivity", None) == f"instruction-sensitivity-{machine}"
    assert module.tag_problem(None) is None and module.tag_problem("tau0.01") is None
    assert all("--tag" in module.tag_problem(tag) for tag in ("", "a/b", ".hidden"))


QUESTION, ANSWER = (
    "Represent the cooking question for retrieving answers:",
    "Represent the cooking answer for retrieval:",
)
BREAD = "Mix flour, water, yeast and salt, knead the dough, let it rise and bake it."
SOURDOUGH = "Sourdough bread is leavened with a fermented starter of flour and water instead of yeast."
PASTA = "Boil dried pasta for eight to ten minutes in salted water."
DRAW = "The football match ended in a draw."


def qa_row(query: str, positive: str, negative: str, task: str = "cooking_qa") -> dict:
    return {"query": [QUESTION, query], "pos": [ANSWER, positive], "neg": [ANSWER, negative], "task_name": task}


def test_ablation_mines_hard_negatives_among_the_tasks_documents(minilm_model):
    from instructor_embed.training.mining import MiningRules

    rows = [
        qa_row("How do I bake bread at home?", BREAD, "The central bank raised interest rates."),
        qa_row("How long should pasta boil?", PASTA, BREAD.replace(".", "!")),  # a near-copy of row 0's positive
        qa_row("What is sourdough bread?", SOURDOUGH, DRAW),
        qa_row("Which team won the match?", DRAW, PASTA),
        qa_row("is this movie good", "a wonderful film", "a dull film", task="sentiment"),
    ]
    rules = MiningRules(num_negatives=1, range_max=20, relative_margin=0.05, sampling="top")
    mined, report = load("instruction_ablation").with_mined_negatives(minilm_model, rows, ["cooking_qa"], rules)

    assert mined[4] is rows[4]  # a task not mined keeps its negative
    documents = {row[side][1] for row in rows[:4] for side in ("pos", "neg")}
    for before, after in zip(rows[:4], mined[:4], strict=True):
        assert after["query"] == before["query"] and after["pos"] == before["pos"]
        assert after["neg"][0] == ANSWER and after["neg"][1] in documents - {before["pos"][1]}
    # the bread question's negative: the other bread answer, not the near-copy of its own positive (within 5 %)
    assert mined[0]["neg"][1] == SOURDOUGH
    cooking = report["cooking_qa"]
    assert (cooking["rows"], cooking["documents"], cooking["replaced"]) == (4, 6, 4)
    assert cooking["query_negative_cosine"]["mined"] > cooking["query_negative_cosine"]["random"]


def test_ablation_mines_only_retrieval_tasks_with_random_negatives():
    module = load("instruction_ablation")
    if not module.MEDI_MINI.is_file():
        pytest.skip("../shared/data/medi-mini is absent")
    tasks = module.mined_tasks()
    assert {"agnews_title_to_description", "medquad_qa", "conala_intent_to_snippet"} <= set(tasks)
    # gold negatives (not-entailed hypotheses, doctors' related questions) and label tasks are left alone
    assert not {"rte_entailment", "medical_question_pairs", "sst2_sentiment", "clinc150_intent"} & set(tasks)


def test_ablation_balanced_weights_give_every_task_the_same_share(tmp_path):
    from instructor_embed.training.config import TrainConfig

    data = tmp_path / "medi.jsonl"
    rows = [qa_row("q", "p", "n", task="small")] * 2 + [qa_row("q", "p", "n", task="large")] * 6
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    weights = load("instruction_ablation").balanced_weights(data)
    parsed = TrainConfig(model="m", data=str(data), output_dir="o", task_weights=weights).weights()
    assert parsed == {"large": pytest.approx(4 / 6, abs=1e-4), "small": 2.0}  # mean size 4 over each task's own


def test_ablation_holds_out_rows_of_every_task_as_reranking_specs(tmp_path):
    """--held-out-rows: a seeded share of each task kept out of training, each task's rows a reranking spec with the
    task's own instructions: label and gold-negative tasks rank a row's positive against its negative, retrieval
    tasks against every other held-out document of the task."""
    module = load("instruction_ablation")
    if not module.MEDI_MINI.is_file():
        pytest.skip("../shared/data/medi-mini is absent")
    from instructor_embed.evaluation.user_tasks import load_user_task

    rows = [json.loads(line) for line in module.MEDI_MINI.read_text().splitlines()]
    train, held = module.hold_out(rows, 0.02, seed=1)
    assert module.hold_out(rows, 0.02, seed=1) == (train, held)
    sizes = {task: sum(row["task_name"] == task for row in rows) for task in held}
    assert len(held) == 19 and all(len(held[task]) == max(1, round(0.02 * n)) for task, n in sizes.items())
    assert len(train) + sum(map(len, held.values())) == len(rows)
    kept_out = {json.dumps(row) for task_rows in held.values() for row in task_rows}
    assert not kept_out & {json.dumps(row) for row in train}

    specs = {load_user_task(path).name: load_user_task(path) for path in module.seen_task_specs(held, tmp_path)}
    assert set(specs) == {f"seen-{task}" for task in held}
    label = specs["seen-sst2_sentiment"]
    assert label.instruction == {
        "query": held["sst2_sentiment"][0]["query"][0],
        "corpus": held["sst2_sentiment"][0]["pos"][0],
    }
    data = label.task.dataset["default"]["test"]
    assert all(len(candidates) == 2 for candidates in data["top_ranked"].values())  # its positive and its negative
    assert data["corpus"]["text"][1] == held["sst2_sentiment"][0]["neg"][1]
    retrieval = specs["seen-agnews_title_to_description"].task.dataset["default"]["test"]
    documents = {row[side][1] for row in held["agnews_title_to_description"] for side in ("pos", "neg")}
    first = held["agnews_title_to_description"][0]
    text_of = dict(zip(retrieval["corpus"]["id"], retrieval["corpus"]["text"], strict=True))
    candidates = [text_of[id_] for id_ in retrieval["top_ranked"]["q0"]]
    assert candidates[0] == first["pos"][1] and set(candidates) == documents - {first["query"][1]}
    assert len(text_of) == len(documents)  # each document embedded once, however many queries rank it
    assert module.task_types()["agnews_title_to_description"] == "retrieval"
    assert module.seen_summary(
        {"seen-sst2_sentiment": 0.8, "seen-agnews_title_to_description": 0.6, "STSBenchmark": 0.1}
    ) == {
        "all": pytest.approx(0.7),
        "same-label": 0.8,
        "retrieval": 0.6,
    }


def test_sensitivity_tells_each_seen_task_it_is_its_sibling(tmp_path, monkeypatch):
    """instruction_sensitivity --seen-rows scores the very rows the ablation held out, each sibling task (same kind
    of text, another labelling) with its own instructions and with the next one's."""
    ablation = load("instruction_ablation")
    if not ablation.MEDI_MINI.is_file():
        pytest.skip("../shared/data/medi-mini is absent")
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    from instructor_embed.evaluation.user_tasks import load_user_task

    specs, wrong = load("instruction_sensitivity").seen_tasks(0.1, 1, tmp_path)
    tasks = {load_user_task(spec).name: load_user_task(spec) for spec in specs}
    assert (
        set(tasks)
        == set(wrong)
        == {
            "seen-tweeteval_emotion",
            "seen-tweeteval_hate",
            "seen-tweeteval_irony",
            "seen-tweeteval_offensive",
            "seen-sst2_sentiment",
            "seen-subj_subjectivity",
        }
    )
    assert wrong["seen-tweeteval_emotion"] == tasks["seen-tweeteval_hate"].instruction
    assert (
        wrong["seen-subj_subjectivity"]
        == tasks["seen-sst2_sentiment"].instruction
        != tasks["seen-subj_subjectivity"].instruction
    )
    rows = [json.loads(line) for line in ablation.MEDI_MINI.read_text().splitlines()]
    held = ablation.hold_out(rows, 0.1, 1)[1]["tweeteval_irony"]
    assert tasks["seen-tweeteval_irony"].task.dataset["default"]["test"]["queries"]["text"] == [
        r["query"][1] for r in held
    ]


def test_ablation_opposite_twins_ask_the_same_rows_for_the_other_label(tmp_path):
    """--opposite-twins: a binary label task's twin holds its rows with the query told to find the other label and
    the positive and negative swapped, so only the instruction tells the two apart; the held-out summary adds the
    twins and the pairs' mean (75 for a model that cannot read instructions)."""
    module = load("instruction_ablation")
    rows = [
        {"query": ["Q:", "fine film"], "pos": ["D:", "a joy"], "neg": ["D:", "a bore"], "task_name": "sst2_sentiment"},
        {
            "query": ["T:", "a title"],
            "pos": ["B:", "a body"],
            "neg": ["B:", "other"],
            "task_name": "bbc_title_to_article",
        },
    ]
    (twin,) = module.opposite_twins(rows)
    assert twin == {
        "query": [module.OPPOSITE_INSTRUCTIONS["sst2_sentiment"], "fine film"],
        "pos": ["D:", "a bore"],
        "neg": ["D:", "a joy"],
        "task_name": "sst2_sentiment_opposite",
    }
    from instructor_embed.evaluation.user_tasks import load_user_task

    (path,) = module.seen_task_specs({twin["task_name"]: [twin]}, tmp_path)
    spec = load_user_task(path)
    assert spec.instruction == {"query": module.OPPOSITE_INSTRUCTIONS["sst2_sentiment"], "corpus": "D:"}
    data = spec.task.dataset["default"]["test"]
    assert data["corpus"]["text"] == ["a bore", "a joy"]  # the twin's positive first, ranked against the task's
    if not module.MEDI_MINI.is_file():
        pytest.skip("../shared/data/medi-mini is absent (task kinds come from its tasks.json)")
    summary = module.seen_summary(
        {"seen-sst2_sentiment": 1.0, "seen-sst2_sentiment_opposite": 0.5, "seen-agnews_title_to_description": 0.6}
    )
    assert summary == {
        "all": pytest.approx(0.7),
        "same-label": 1.0,
        "opposite twin": 0.5,
        "retrieval": 0.6,
        "twins and their tasks": 0.75,
    }


def test_ablation_twin_options_name_their_tasks_and_refuse_unknown_ones():
    module = load("instruction_ablation")
    assert module.twin_tasks("clinc150_intent, snips_intent") == ("clinc150_intent", "snips_intent")
    with pytest.raises(Exception, match="tweeteval_irony: no twin instruction"):
        module.twin_tasks("clinc150_intent,tweeteval_irony")
    with pytest.raises(Exception, match="at least one task"):
        module.twin_tasks(" , ")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--untrained-twins", "snips_intent"], "need --held-out-rows"),
        (
            ["--held-out-rows", "0.1", "--opposite-twins", "snips_intent", "--untrained-twins", "snips_intent"],
            "snips_intent: twins cannot be both trained and untrained",
        ),
        (
            ["--opposite-twins", "sst2_sentiment", "--twin-wordings", str(BENCHMARKS / "data/twin-wordings.json")],
            "--twin-wordings: subj_subjectivity has no twin in this run",
        ),
    ],
)
def test_ablation_refuses_untrained_twins_it_cannot_score(monkeypatch, capsys, options, message):
    module = load("instruction_ablation")
    if not module.MEDI_MINI.is_file():
        pytest.skip("../shared/data/medi-mini is absent")
    monkeypatch.setattr("sys.argv", ["instruction_ablation.py", *options])
    assert module.main() == 2
    assert message in capsys.readouterr().err


def test_ablation_summary_keeps_untrained_twins_apart_from_trained_ones():
    """An untrained twin (scored, never trained on) and its task make their own pair average."""
    module = load("instruction_ablation")
    if not module.MEDI_MINI.is_file():
        pytest.skip("../shared/data/medi-mini is absent (task kinds come from its tasks.json)")
    summary = module.seen_summary(
        {
            "seen-subj_subjectivity": 1.0,
            "seen-subj_subjectivity_opposite": 0.9,
            "seen-snips_intent": 1.0,
            "seen-snips_intent_opposite_untrained": 0.5,
        }
    )
    assert summary == {
        "all": pytest.approx(0.85),
        "same-label": 1.0,
        "opposite twin": 0.9,
        "untrained twin": 0.5,
        "twins and their tasks": pytest.approx(0.95),
        "untrained twins and their tasks": 0.75,
    }


def test_twin_transfer_scores_each_held_out_row_with_its_task_and_its_twin(tmp_path, monkeypatch):
    """twin_transfer's specs are the ablation's held-out rows (same fraction and seed), each task beside its twin,
    whose query asks for another label and whose candidates trade places."""
    ablation = load("instruction_ablation")
    if not ablation.MEDI_MINI.is_file():
        pytest.skip("../shared/data/medi-mini is absent")
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    from instructor_embed.evaluation.user_tasks import load_user_task

    transfer = load("twin_transfer")
    specs = {
        load_user_task(p).name: load_user_task(p) for p in transfer.twin_specs(("snips_intent",), 0.1, 1, tmp_path)
    }
    assert set(specs) == {"seen-snips_intent", "seen-snips_intent_opposite", "seen-snips_intent_same"}
    assert specs["seen-snips_intent_same"].instruction["query"] == ablation.SAME_INSTRUCTIONS["snips_intent"]
    same = specs.pop("seen-snips_intent_same").task.dataset["default"]["test"]
    assert same["corpus"]["text"] == specs["seen-snips_intent"].task.dataset["default"]["test"]["corpus"]["text"]
    rows = [json.loads(line) for line in ablation.MEDI_MINI.read_text().splitlines()]
    held = ablation.hold_out(rows, 0.1, 1)[1]["snips_intent"]
    task, twin = (specs[name].task.dataset["default"]["test"] for name in sorted(specs))
    assert task["queries"]["text"] == twin["queries"]["text"] == [r["query"][1] for r in held]
    assert specs["seen-snips_intent_opposite"].instruction["query"] == ablation.OPPOSITE_INSTRUCTIONS["snips_intent"]
    assert specs["seen-snips_intent"].instruction == {"query": held[0]["query"][0], "corpus": held[0]["pos"][0]}
    pairs = transfer.pair_scores({"seen-snips_intent": 1.0, "seen-snips_intent_opposite": 0.5}, ("snips_intent",))
    assert pairs == {"snips_intent": {"task": 1.0, "twin": 0.5, "pair": 0.75}}
    row = transfer.table([{"model": "base", "pairs": pairs}], ("snips_intent",)).splitlines()[-1]
    assert row == "| base | 100.00 / 50.00 → **75.00** | 75.00 |"  # scores × 100, the pairs' mean last


def test_twin_transfer_wordings_put_the_asked_for_candidate_first(tmp_path, monkeypatch):
    """--wordings: an "other" wording ranks the twin's positive (the task's negative) first, a "same" wording the
    task's own positive, each over the same held-out rows with that wording on every query."""
    ablation = load("instruction_ablation")
    if not ablation.MEDI_MINI.is_file():
        pytest.skip("../shared/data/medi-mini is absent")
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    from instructor_embed.evaluation.user_tasks import load_user_task

    transfer = load("twin_transfer")
    wordings = ablation.read_twin_wordings(BENCHMARKS / "data" / "twin-wordings.json")
    paths = transfer.wording_specs({"subj_subjectivity": wordings["subj_subjectivity"]}, 0.1, 1, tmp_path)
    specs = {load_user_task(p).name: load_user_task(p) for p in paths}
    other, same = specs["seen-subj_subjectivity-other1"], specs["seen-subj_subjectivity-same1"]
    assert other.instruction["query"] == wordings["subj_subjectivity"]["other"][0]
    assert same.instruction["query"] == wordings["subj_subjectivity"]["same"][0]
    rows = [json.loads(line) for line in ablation.MEDI_MINI.read_text().splitlines()]
    held = ablation.hold_out(rows, 0.1, 1)[1]["subj_subjectivity"]
    for spec, wanted in ((other, "neg"), (same, "pos")):
        data = spec.task.dataset["default"]["test"]
        assert data["queries"]["text"] == [r["query"][1] for r in held]
        first = data["relevant_docs"][data["queries"]["id"][0]]
        (positive,) = [
            text for i, text in zip(data["corpus"]["id"], data["corpus"]["text"], strict=True) if first.get(i)
        ]
        assert positive == held[0][wanted][1]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({"tweeteval_irony": {"other": ["x:"]}}, "'tweeteval_irony' has no twin"),
        ({"subj_subjectivity": {"opposite": ["x:"]}}, "needs 'other' and/or 'same'"),
        ({"subj_subjectivity": {"other": ["x:", " "]}}, "must be a list of instructions"),
    ],
)
def test_twin_transfer_wordings_file_errors_name_the_task(tmp_path, monkeypatch, content, message):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    path = tmp_path / "wordings.json"
    path.write_text(json.dumps(content))
    with pytest.raises(ValueError, match=message):
        load("instruction_ablation").read_twin_wordings(path)


def test_ablation_same_twins_ask_for_the_same_label_in_the_opposite_twins_words():
    """--same-twins: the task's rows and answers again, the query asking for the same label worded like the
    opposite twin, so the two twins differ in "same" / "opposite" alone; the summary keeps them in a group of
    their own, out of the pair averages (a model deaf to instructions scores such a twin as its task)."""
    module = load("instruction_ablation")
    rows = [
        {
            "query": ["S:", "a dull plot"],
            "pos": ["S:", "a moving film"],
            "neg": ["S:", "he leaves"],
            "task_name": "subj_subjectivity",
        },
        {
            "query": ["Q:", "play jazz"],
            "pos": ["Q:", "play rock"],
            "neg": ["Q:", "rain?"],
            "task_name": "clinc150_intent",
        },
    ]
    (same,) = module.same_twins(rows, ("subj_subjectivity",))
    assert same == rows[0] | {
        "query": [module.SAME_INSTRUCTIONS["subj_subjectivity"], "a dull plot"],
        "task_name": "subj_subjectivity_same",
    }
    with pytest.raises(Exception, match="clinc150_intent: no twin instruction"):
        module.task_list(module.SAME_INSTRUCTIONS)("clinc150_intent")
    if not module.MEDI_MINI.is_file():
        pytest.skip("../shared/data/medi-mini is absent (task kinds come from its tasks.json)")
    summary = module.seen_summary(
        {"seen-subj_subjectivity": 1.0, "seen-subj_subjectivity_opposite": 0.9, "seen-subj_subjectivity_same": 0.6}
    )
    assert summary == {
        "all": pytest.approx(2.5 / 3),
        "same-label": 1.0,
        "opposite twin": 0.9,
        "same-label twin": 0.6,
        "twins and their tasks": pytest.approx(0.95),
    }


def test_twin_transfer_refuses_a_share_the_ablation_cannot_have_held_out(tmp_path, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    monkeypatch.setattr("sys.argv", ["twin_transfer.py", str(tmp_path), "--held-out-rows", "0.9"])
    assert load("twin_transfer").main() == 2
    assert "--held-out-rows 0.9: the ablation's share" in capsys.readouterr().err


@pytest.mark.parametrize("training_file", ["twin-training-wordings.json", "twin-training-wordings-8.json"])
def test_ablation_twin_wordings_vary_the_training_twins_and_stay_apart_from_the_held_out_ones(training_file):
    """--twin-wordings draws each twin row's query instruction from the file's list for its task and kind (seeded),
    tasks without one keep the twin's own; the training wordings share none with twin_transfer's held-out ones."""
    module = load("instruction_ablation")
    training = module.read_twin_wordings(BENCHMARKS / "data" / training_file)
    trained = {text for kinds in training.values() for texts in kinds.values() for text in texts}
    for held_out_file in ("twin-wordings.json", "twin-wordings-probe.json", "twin-wordings-negation.json"):
        held_out = module.read_twin_wordings(BENCHMARKS / "data" / held_out_file)
        assert not {text for kinds in held_out.values() for texts in kinds.values() for text in texts} & trained
    assert training["subj_subjectivity"]["other"][0] == module.OPPOSITE_INSTRUCTIONS["subj_subjectivity"]
    assert training["subj_subjectivity"]["same"][0] == module.SAME_INSTRUCTIONS["subj_subjectivity"]
    rows = [
        {"query": ["S:", f"s{i}"], "pos": ["S:", f"p{i}"], "neg": ["S:", f"n{i}"], "task_name": "subj_subjectivity"}
        for i in range(200)
    ] + [{"query": ["R:", "r"], "pos": ["R:", "p"], "neg": ["R:", "n"], "task_name": "sst2_sentiment"}]
    twins = module.opposite_twins(rows, wordings=training, seed=1)
    subj = [twin["query"][0] for twin in twins if twin["task_name"] == "subj_subjectivity_opposite"]
    assert set(subj) == set(training["subj_subjectivity"]["other"])  # every wording drawn, none other
    assert subj == [t["query"][0] for t in module.opposite_twins(rows, wordings=training, seed=1)][:200]  # seeded
    (sst2,) = [twin for twin in twins if twin["task_name"] == "sst2_sentiment_opposite"]
    assert sst2["query"][0] == module.OPPOSITE_INSTRUCTIONS["sst2_sentiment"]
    same = module.same_twins(rows, ("subj_subjectivity",), training, 1)
    assert {twin["query"][0] for twin in same} == set(training["subj_subjectivity"]["same"])
    assert [twin["pos"] for twin in same] == [row["pos"] for row in rows[:200]]


def test_the_eight_training_wordings_add_four_to_the_four_and_keep_the_probes_words_held_out():
    """The eight-wording run asks whether more variety makes a model read unseen wordings: its file keeps the
    four-wording run's wordings first and adds four of each kind, none with the probes' words for the relation
    (one wording has "not", as two probes do: README says so)."""
    module = load("instruction_ablation")
    four = module.read_twin_wordings(BENCHMARKS / "data" / "twin-training-wordings.json")["subj_subjectivity"]
    eight = module.read_twin_wordings(BENCHMARKS / "data" / "twin-training-wordings-8.json")["subj_subjectivity"]
    for kind in ("other", "same"):
        assert eight[kind][:4] == four[kind] and len(set(eight[kind])) == 8
    probed = {"opposite", "reverse", "different", "differs", "similar"}  # twin-wordings-probe.json's key words
    assert not {word.strip(",:") for text in eight["other"] + eight["same"] for word in text.split()} & probed
    negated = [text for text in eight["other"] + eight["same"] if "not" in text.split()]
    assert negated == [eight["other"][6]] and "does not share" in negated[0]  # the one "not" README names


def test_ablation_records_path_and_list_options_as_json_text():
    # --twin-wordings (a Path) once made the finished run fail to write its results: Path is not JSON
    import argparse

    module = load("instruction_ablation")
    args = argparse.Namespace(
        steps=600, twin_wordings=Path("a/b.json"), opposite_twins=("x", "y"), keep_models="k", tag=None, only=False
    )
    settings = module.recorded_settings(args)
    assert settings == {"steps": 600, "twin_wordings": "a/b.json", "opposite_twins": "x,y"}
    assert json.loads(json.dumps(settings)) == settings
