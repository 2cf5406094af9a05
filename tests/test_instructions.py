import pytest

from instructor_embed import InputError, InputTypeError, instruction


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("sentence",), "Represent the sentence:"),
        (("title", "Science"), "Represent the Science title:"),
        (
            ("question", "Wikipedia", "retrieving supporting documents"),
            "Represent the Wikipedia question for retrieving supporting documents:",
        ),
        (("review", None, "classifying emotion"), "Represent the review for classifying emotion:"),
        (
            (" sentence ", " Medicine ", " retrieving a duplicate sentence "),
            "Represent the Medicine sentence for retrieving a duplicate sentence:",
        ),
    ],
)
def test_template(args, expected):
    assert instruction(*args) == expected


def test_text_type_is_required():
    with pytest.raises(InputError, match="text_type must not be empty"):
        instruction("  ")
    with pytest.raises(InputTypeError, match="text_type must be a string"):
        instruction(None)
    with pytest.raises(InputTypeError, match="domain must be a string"):
        instruction("sentence", domain=3)
