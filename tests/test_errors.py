"""Errors carry where the problem is, and a missing optional package is an ImportError naming its extra."""

from __future__ import annotations

import pickle
import sys

import pytest

from instructor_embed import InputError, InputTypeError, MissingDependencyError
from instructor_embed.dependencies import require


@pytest.mark.parametrize(
    ("sentences", "param", "index"),
    [
        (["ok", ["Represent the sentence:", 5]], "text", 1),
        ([["Represent:", "a"], [None, "b"], "c"], "instruction", 1),
        (["ok", "fine", 3.5], "sentences", 2),
        ([["only one"]], "sentences", 0),
        (7, "sentences", None),
    ],
)
def test_input_errors_name_the_item_and_field(tiny_model, sentences, param, index):
    with pytest.raises(InputError) as caught:
        tiny_model.encode(sentences)
    assert (caught.value.param, caught.value.index) == (param, index)


def test_option_errors_name_the_parameter(tiny_model):
    for options, param in [({"batch_size": 0}, "batch_size"), ({"precision": "int4"}, "precision")]:
        with pytest.raises(InputError) as caught:
            tiny_model.encode(["a"], **options)
        assert caught.value.param == param


def test_file_errors_name_path_and_line(tmp_path):
    from instructor_embed.records import read_records

    (tmp_path / "in.jsonl").write_text('{"text": "a"}\n{"text": 3}\n')
    with pytest.raises(InputError) as caught:
        read_records(tmp_path / "in.jsonl")
    assert caught.value.path == str(tmp_path / "in.jsonl") and caught.value.line == 2 and caught.value.param == "text"


def test_errors_survive_pickling_with_their_attributes():
    """Errors cross process boundaries (worker processes, Ray actors) whole."""
    error = pickle.loads(pickle.dumps(InputTypeError("Item 3: bad", param="text", index=3)))
    assert isinstance(error, InputTypeError) and (error.param, error.index, str(error)) == ("text", 3, "Item 3: bad")


def test_missing_dependency_is_an_import_error_naming_the_extra():
    with pytest.raises(ImportError) as caught:
        require("server", "surely_not_an_installed_module", "instructor-embed serve")
    error = caught.value
    assert isinstance(error, MissingDependencyError) and (error.extra, error.module) == ("server", error.name)
    assert "instructor-embed serve needs" in str(error) and "pip install 'instructor-embed[server]'" in str(error)


@pytest.mark.parametrize(
    ("module", "options", "extra"),
    [("onnxruntime", {"backend": "onnx"}, "onnx"), ("torchao", {"quantize": "int8"}, "torchao")],
)
def test_backends_without_their_package_name_the_extra(tiny_t5_dir, monkeypatch, module, options, extra):
    from instructor_embed import INSTRUCTOR

    for name in [m for m in sys.modules if m == module or m.startswith(module + ".")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` raise ImportError
    with pytest.raises(MissingDependencyError, match=rf"instructor-embed\[{extra}\]"):
        INSTRUCTOR(tiny_t5_dir, device="cpu", **options)


def test_parquet_output_without_pyarrow_names_the_extra(tmp_path, monkeypatch):
    from instructor_embed.records import check_output_path

    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with pytest.raises(MissingDependencyError, match=r"instructor-embed\[parquet\]"):
        check_output_path(tmp_path / "out.parquet", overwrite=False)
