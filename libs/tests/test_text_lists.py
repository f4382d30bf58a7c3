"""A list of texts sent as one text comes back from PostgreSQL's split exactly, or is refused."""

import pytest

from crm_libs import text_lists


@pytest.mark.parametrize("values", [[], ["a"], ["a", ""], ["", "b", ""], ["王芳", "x y", "{}"]])
def test_the_split_gives_the_values_back(values: list[str]) -> None:
    text = text_lists.joined(values)
    # string_to_array's reading of the joined text: no values for an empty text.
    assert (text.split(text_lists.SEPARATOR) if text else []) == values


@pytest.mark.parametrize("values", [[""], ["a\x1fb"], ["a", "\x1f"]])
def test_a_list_the_split_would_misread_is_refused(values: list[str]) -> None:
    with pytest.raises(ValueError, match="separator"):
        text_lists.joined(values)


def test_the_split_is_postgres_string_to_array() -> None:
    assert text_lists.split_sql("$3") == "string_to_array($3, E'\\x1f')"
