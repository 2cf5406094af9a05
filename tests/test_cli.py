"""instructor-embed encode: file formats, per-row instructions, and errors that name the line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from instructor_embed.cli import main

INSTR = "Represent the sentence:"


def run(capsys, *args) -> tuple[int, str]:
    code = main(["encode", *map(str, args), "--quiet"])
    return code, capsys.readouterr().err


def test_txt_to_npy_matches_the_library(tiny_t5_dir, tiny_model, tmp_path, capsys):
    lines = ["A girl is styling her hair.", "A group of men play soccer on the beach.", ""]
    (tmp_path / "in.txt").write_text("\n".join(lines) + "\n")
    code, err = run(
        capsys,
        "--model",
        tiny_t5_dir,
        "--input",
        tmp_path / "in.txt",
        "--output",
        tmp_path / "o.npy",
        "--instruction",
        INSTR,
        "--batch-size",
        2,
        "--device",
        "cpu",
    )
    assert code == 0, err
    expected = tiny_model.encode([[INSTR, line] for line in lines])
    np.testing.assert_allclose(np.load(tmp_path / "o.npy"), expected, atol=1e-6)


def test_jsonl_with_ids_and_row_instructions_to_parquet(tiny_t5_dir, tiny_model, tmp_path, capsys):
    pq = pytest.importorskip("pyarrow.parquet")
    rows = [
        {"id": "a", "text": "aspirin lowers fever", "instruction": "Represent the Medicine sentence:"},
        {"id": 7, "text": "stocks fell"},
    ]
    (tmp_path / "in.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    code, err = run(
        capsys,
        "--model",
        tiny_t5_dir,
        "--input",
        tmp_path / "in.jsonl",
        "--output",
        tmp_path / "o.parquet",
        "--instruction",
        INSTR,
    )
    assert code == 0, err
    table = pq.read_table(tmp_path / "o.parquet").to_pydict()
    assert table["id"] == ["a", "7"]
    expected = tiny_model.encode([["Represent the Medicine sentence:", rows[0]["text"]], [INSTR, rows[1]["text"]]])
    np.testing.assert_allclose(np.array(table["embedding"]), expected, atol=1e-6)


def test_csv_without_instruction(tiny_t5_dir, tiny_model, tmp_path, capsys):
    (tmp_path / "in.csv").write_text('id,text\nx1,"hello, world"\nx2,second\n')
    code, err = run(capsys, "--model", tiny_t5_dir, "--input", tmp_path / "in.csv", "--output", tmp_path / "o.npy")
    assert code == 0, err
    np.testing.assert_allclose(np.load(tmp_path / "o.npy"), tiny_model.encode(["hello, world", "second"]), atol=1e-6)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("in.jsonl", '{"text": "ok"}\n{"text": "ok"\n', "line 2: invalid JSON"),
        ("in.jsonl", '{"text": "ok"}\n\n{"txt": "typo"}\n', "line 3: no 'text' field"),
        ("in.jsonl", '{"text": 5}\n', "line 1: 'text' must be a string, not int"),
        ("in.jsonl", '["a", "b"]\n', "line 1: expected a JSON object, got list"),
        ("in.jsonl", '{"text": "a", "instruction": 3}\n', "line 1: 'instruction' must be a string"),
        ("in.jsonl", '{"text": "a", "id": 1}\n{"text": "b"}\n', "line 2: no id, while other rows have one"),
        ("in.csv", "id,body\n1,x\n", "line 1: the header has no 'text' column"),
        ("in.csv", "id,text\n1,x\n2,y,extra\n", "line 3: expected 2 fields"),
        ("in.xml", "<a/>", "unsupported input type '.xml'"),
    ],
)
def test_bad_input_files_name_the_line(tiny_t5_dir, tmp_path, capsys, name, content, message):
    (tmp_path / name).write_text(content)
    code, err = run(capsys, "--model", tiny_t5_dir, "--input", tmp_path / name, "--output", tmp_path / "o.npy")
    assert code == 2
    assert message in err and str(tmp_path / name) in err
    assert not (tmp_path / "o.npy").exists()


def test_existing_output_is_kept_without_overwrite(tiny_t5_dir, tmp_path, capsys):
    (tmp_path / "in.txt").write_text("hello\n")
    (tmp_path / "o.npy").write_bytes(b"precious")
    code, err = run(capsys, "--model", tiny_t5_dir, "--input", tmp_path / "in.txt", "--output", tmp_path / "o.npy")
    assert code == 2 and "pass --overwrite" in err
    assert (tmp_path / "o.npy").read_bytes() == b"precious"


def test_missing_model_is_a_clean_error(tmp_path, capsys):
    (tmp_path / "in.txt").write_text("hello\n")
    code, err = run(
        capsys, "--model", tmp_path / "absent", "--input", tmp_path / "in.txt", "--output", tmp_path / "o.npy"
    )
    assert code == 2 and "No model directory at" in err and "Traceback" not in err


@pytest.mark.slow
def test_console_script_help_and_run(tiny_t5_dir, tmp_path):
    help_text = subprocess.run(
        [sys.executable, "-m", "instructor_embed", "encode", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "--instruction" in help_text and ".jsonl" in help_text and ".parquet" in help_text
    (tmp_path / "in.txt").write_text("one\ntwo\n")
    script = Path(sys.executable).parent / "instructor-embed"  # installed by pip install -e .
    result = subprocess.run(
        [
            str(script),
            "encode",
            "--model",
            str(tiny_t5_dir),
            "--input",
            str(tmp_path / "in.txt"),
            "--output",
            str(tmp_path / "o.npy"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert np.load(tmp_path / "o.npy").shape == (2, 768)
    assert "Embedding" in result.stderr and "wrote 2 embeddings" in result.stderr


def test_non_utf8_input_names_the_line_and_the_fix(tiny_t5_dir, tmp_path, capsys):
    (tmp_path / "in.txt").write_bytes("caf\u00e9\n".encode() + "na\u00efve\n".encode("latin-1"))
    code, err = run(capsys, "--model", tiny_t5_dir, "--input", tmp_path / "in.txt", "--output", tmp_path / "o.npy")
    assert code == 2 and "in.txt, line 2: not valid UTF-8 (byte 0xef at column 3)" in err and "iconv" in err


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl", ".txt"])
def test_a_byte_order_mark_is_not_part_of_the_first_row(tiny_t5_dir, tiny_model, tmp_path, capsys, suffix):
    content = {
        ".csv": "text,id\nhello,a\n",
        ".tsv": 'text\tid\n"quoted" hello\ta\n',
        ".jsonl": '{"text": "hello", "id": "a"}\n',
        ".txt": "hello\n",
    }[suffix]
    (tmp_path / f"in{suffix}").write_bytes(b"\xef\xbb\xbf" + content.encode())
    code, err = run(capsys, "--model", tiny_t5_dir, "--input", tmp_path / f"in{suffix}", "--output", tmp_path / "o.npy")
    assert code == 0, err
    text = '"quoted" hello' if suffix == ".tsv" else "hello"  # TSV keeps quote characters as written
    np.testing.assert_allclose(np.load(tmp_path / "o.npy"), tiny_model.encode([text]), atol=1e-6)


def test_duplicate_ids_are_refused_with_both_lines(tiny_t5_dir, tmp_path, capsys):
    (tmp_path / "in.jsonl").write_text('{"id": 1, "text": "a"}\n{"id": 2, "text": "b"}\n{"id": 1, "text": "c"}\n')
    code, err = run(capsys, "--model", tiny_t5_dir, "--input", tmp_path / "in.jsonl", "--output", tmp_path / "o.npy")
    assert code == 2 and "in.jsonl, line 3: id 1 repeats the id of line 1" in err


def test_parquet_ids_keep_one_type(tiny_t5_dir, tmp_path, capsys):
    pq = pytest.importorskip("pyarrow.parquet")
    (tmp_path / "ints.jsonl").write_text('{"id": 10, "text": "a"}\n{"id": 7, "text": "b"}\n')
    (tmp_path / "none.txt").write_text("a\nb\n")
    for name in ("ints.jsonl", "none.txt"):
        code, err = run(
            capsys, "--model", tiny_t5_dir, "--input", tmp_path / name, "--output", tmp_path / f"{name}.parquet"
        )
        assert code == 0, err
    assert pq.read_table(tmp_path / "ints.jsonl.parquet").to_pydict()["id"] == [10, 7]
    assert pq.read_table(tmp_path / "none.txt.parquet").to_pydict()["id"] == [0, 1]


def test_outputs_get_the_users_usual_permissions(tiny_t5_dir, tmp_path, capsys):
    import os

    (tmp_path / "in.txt").write_text("hello\n")
    previous = os.umask(0o022)
    try:
        code, err = run(capsys, "--model", tiny_t5_dir, "--input", tmp_path / "in.txt", "--output", tmp_path / "o.npy")
    finally:
        os.umask(previous)
    assert code == 0, err
    assert (tmp_path / "o.npy").stat().st_mode & 0o777 == 0o644


def test_a_quiet_run_prints_nothing(tiny_t5_dir, tmp_path):
    (tmp_path / "in.txt").write_text("hello\n")
    command = [sys.executable, "-m", "instructor_embed", "encode", "--model", str(tiny_t5_dir), "--quiet"]
    result = subprocess.run(
        [*command, "--input", str(tmp_path / "in.txt"), "--output", str(tmp_path / "o.npy")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0 and result.stdout == "" and result.stderr == ""


def test_train_help_shows_real_defaults_and_required_options(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "starting checkpoint: Hub id or local directory (required)" in text
    assert "contrastive loss temperature (default: 0.01)" in text and "(default: None)" not in text
