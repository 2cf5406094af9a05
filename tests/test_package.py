"""The public surface and the direction of dependencies."""

import subprocess
import sys

import instructor_embed


def test_all_is_importable():
    for name in instructor_embed.__all__:
        assert getattr(instructor_embed, name) is not None


def test_core_import_stays_small():
    """Importing the library loads neither the CLI layer nor optional heavy packages."""
    code = (
        "import sys, instructor_embed\n"
        "heavy = {'instructor_embed.cli', 'instructor_embed.records', 'instructor_embed.training', 'accelerate',\n"
        "         'onnxruntime', 'pyarrow', 'sentence_transformers', 'fastapi'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
