"""Property-based tests of the input readers: random rows, randomly corrupted lines, in every input format.

The contract: every bad line is reported by its number (an ``InputError`` with ``path`` and ``line``), and every
good line comes through unchanged — its text byte for byte, its id and instruction as written.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import pieces

from instructor_embed import InputError
from instructor_embed.records import Fields, iter_rows

pytest.importorskip("pyarrow")

pytestmark = pytest.mark.slow  # make test runs these; the quick loop (-m "not slow") does not


def valid_text(exclude: str = ""):
    """Unicode text without surrogates (a file cannot hold them) and without the characters in ``exclude``."""
    return (
        st.lists(pieces, max_size=20)
        .map("".join)
        .filter(lambda text: not any("\ud800" <= c <= "\udfff" or c in exclude for c in text))
    )


ids = st.one_of(st.none(), st.integers(-(2**40), 2**40), valid_text('\r\n\t,"').filter(bool))


def read(path: Path):
    problems: list[InputError] = []
    rows = list(iter_rows(path, Fields(), on_error=problems.append))
    return rows, problems


def check(path: Path, good: dict[int, tuple], bad: set[int]) -> None:
    rows, problems = read(path)
    reported = [problem.line for problem in problems]
    assert sorted(reported) == sorted(bad), [str(p) for p in problems]
    assert all(problem.path == str(path) and f"line {problem.line}" in str(problem) for problem in problems)
    assert {line: (row_id, instruction, text) for line, row_id, instruction, text in rows} == good


JSONL_CORRUPTIONS = [
    b'{"text": "cut short',  # invalid JSON
    b"[1, 2, 3]",  # not an object
    b'{"id": 5}',  # no text
    b'{"text": 7}',  # text of the wrong type
    b'{"text": "t", "instruction": ["x"]}',
    b'{"text": "t", "id": true}',
    b'{"text": "t", "id": 1.5}',
    b'{"text": "caf\xe9"}',  # Latin-1, not UTF-8
    b'{"text": "\\ud800 unpaired"}',  # a lone surrogate escape
    b'{"text": "ok", "instruction": "\\udfff"}',
]


@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("good"), ids, st.none() | valid_text(), valid_text(), st.booleans()),
            st.tuples(st.just("bad"), st.sampled_from(JSONL_CORRUPTIONS)),
            st.tuples(st.just("blank"), st.sampled_from([b"", b"   ", b"\t"])),
        ),
        max_size=25,
    )
)
def test_jsonl_reports_every_bad_line_and_keeps_the_good_ones(tmp_path_factory, lines):
    path = tmp_path_factory.mktemp("jsonl") / "in.jsonl"
    good, bad, raw = {}, set(), []
    for number, line in enumerate(lines, start=1):
        if line[0] == "good":
            _, row_id, instruction, text, ascii_only = line
            row = {"text": text} | ({"id": row_id} if row_id is not None else {})
            row |= {"instruction": instruction} if instruction is not None else {}
            raw.append(json.dumps(row, ensure_ascii=ascii_only).encode())
            good[number] = (row_id, instruction, text)
        elif line[0] == "bad":
            raw.append(line[1])
            bad.add(number)
        else:
            raw.append(line[1])
    path.write_bytes(b"\n".join(raw) + b"\n")
    check(path, good, bad)


@given(
    st.sampled_from([".csv", ".tsv"]),
    st.lists(
        st.one_of(
            st.tuples(st.just("good"), ids, st.none() | valid_text("\r\n\t"), valid_text("\r\n\t")),
            st.tuples(st.just("fields"), st.integers(1, 2) | st.integers(4, 6)),
            st.tuples(st.just("encoding"), st.sampled_from([b"caf\xe9", b"\xed\xa0\x80", b"\xff\xfe", b"\xc3"])),
        ),
        max_size=25,
    ),
)
def test_csv_and_tsv_report_every_bad_line_and_keep_the_good_ones(tmp_path_factory, suffix, lines):
    path = tmp_path_factory.mktemp("table") / f"in{suffix}"
    separator = "," if suffix == ".csv" else "\t"
    good, bad, raw = {}, set(), [separator.join(["id", "text", "instruction"]).encode()]
    for number, line in enumerate(lines, start=2):
        if line[0] == "good":
            _, row_id, instruction, text = line
            fields = ["" if row_id is None else str(row_id), text, instruction or ""]
            raw.append(_table_line(fields, suffix).encode())
            # CSV has no types and no nulls: ids are strings, an empty id or instruction is none
            good[number] = (str(row_id) if row_id not in (None, "") else None, instruction or None, text)
        elif line[0] == "fields":
            raw.append(separator.join(["x"] * line[1]).encode())
            bad.add(number)
        else:
            raw.append(b"1" + separator.encode() + line[1] + separator.encode())
            bad.add(number)
    path.write_bytes(b"\n".join(raw) + b"\n")
    check(path, good, bad)


def _table_line(fields: list[str], suffix: str) -> str:
    if suffix == ".tsv":
        return "\t".join(fields)
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(fields)
    return buffer.getvalue()


@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("good"), valid_text("\r\n")),
            st.tuples(st.just("encoding"), st.sampled_from([b"caf\xe9", b"\xed\xa0\x80 surrogate", b"\x80"])),
        ),
        max_size=25,
    )
)
def test_txt_reports_every_bad_line_and_keeps_the_good_ones(tmp_path_factory, lines):
    path = tmp_path_factory.mktemp("txt") / "in.txt"
    good, bad, raw = {}, set(), []
    for number, line in enumerate(lines, start=1):
        if line[0] == "good":
            raw.append(line[1].encode())
            good[number] = (None, None, line[1].removeprefix("\ufeff") if number == 1 else line[1])  # a BOM
        else:
            raw.append(line[1])
            bad.add(number)
    path.write_bytes(b"".join(part + b"\n" for part in raw))
    check(path, good, bad)


@given(st.lists(st.tuples(st.none() | valid_text(), st.none() | valid_text(), st.integers(0, 9)), max_size=25))
def test_parquet_reports_rows_without_text_and_keeps_the_others(tmp_path_factory, rows):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path_factory.mktemp("parquet") / "in.parquet"
    table = pa.table(
        {"text": [r[0] for r in rows], "instruction": [r[1] for r in rows], "id": [r[2] for r in rows]},
        schema=pa.schema([("text", pa.string()), ("instruction", pa.string()), ("id", pa.int64())]),
    )
    pq.write_table(table, path, row_group_size=7)
    good = {n: (r[2], r[1], r[0]) for n, r in enumerate(rows, start=1) if r[0] is not None}
    check(path, good, {n for n, r in enumerate(rows, start=1) if r[0] is None})


@pytest.mark.parametrize("damage", ["truncated", "not parquet", "empty"])
def test_a_damaged_parquet_file_is_an_input_error_naming_it(tmp_path, damage):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "in.parquet"
    pq.write_table(pa.table({"text": [f"row {i}" for i in range(100)]}), path)
    data = path.read_bytes()
    path.write_bytes({"truncated": data[: len(data) // 2], "not parquet": b"PAR1 but not really", "empty": b""}[damage])
    with pytest.raises(InputError, match="in.parquet") as caught:
        list(iter_rows(path))
    assert caught.value.path == str(path)


@pytest.mark.parametrize("suffix", [".txt", ".csv", ".tsv"])
def test_lines_after_a_non_utf8_line_keep_their_numbers(tmp_path, suffix):
    """Found by the fuzzer: the line skipped for bad UTF-8 shifted the number of every later line by one."""
    path = tmp_path / f"in{suffix}"
    header = b"" if suffix == ".txt" else b"text\n"
    path.write_bytes(
        header + b"caf\xe9\nfine\n" + (b"" if suffix == ".txt" else b"a,b\n" if suffix == ".csv" else b"a\tb\n")
    )
    rows, problems = read(path)
    first = 1 if suffix == ".txt" else 2
    assert [row[0] for row in rows] == [first + 1]
    assert [problem.line for problem in problems] == [first] + ([] if suffix == ".txt" else [first + 2])
