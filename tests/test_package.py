"""The public surface and the direction of dependencies."""

import subprocess
import sys

import instructor_embed


def test_all_is_importable():
    for name in instructor_embed.__all__:
        assert getattr(instructor_embed, name) is not None
    assert set(instructor_embed.__all__) <= set(dir(instructor_embed))


def modules_loaded_by(code: str) -> set[str]:
    """The modules a fresh interpreter holds after running ``code``."""
    script = f"import sys\n{code}\nprint('\\n'.join(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return set(result.stdout.split())


def test_the_core_imports_none_of_the_layers_above_it():
    """Embedding loads neither the CLI, training, evaluation, nor any optional heavy package."""
    loaded = modules_loaded_by("import instructor_embed\ninstructor_embed.INSTRUCTOR, instructor_embed.Item")
    above = ("cli", "records", "training", "evaluation", "server", "bulk", "integrations")
    assert not {f"instructor_embed.{name}" for name in above} & loaded
    heavy = {"accelerate", "onnxruntime", "pyarrow", "sentence_transformers", "fastapi", "mteb", "datasets", "ray"}
    assert not heavy & loaded
    assert "torch" in loaded  # the model itself did load


def test_the_command_line_parser_loads_no_torch():
    """``instructor-embed --help``/``encode --help`` build every parser without torch or the training stack, so
    they answer at once and Ctrl-C in the first second never lands inside torch's import."""
    loaded = modules_loaded_by("from instructor_embed.cli import build_parser\nbuild_parser()")
    assert "torch" not in loaded and "instructor_embed.training.loop" not in loaded
    assert "accelerate" not in loaded and "instructor_embed.model" not in loaded


def test_version():
    from importlib.metadata import version

    assert instructor_embed.__version__ == version("instructor-embed")
    result = subprocess.run(
        [sys.executable, "-m", "instructor_embed", "--version"], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == f"instructor-embed {instructor_embed.__version__}"
