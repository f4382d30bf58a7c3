"""A list of texts sent to PostgreSQL as one text, which the server splits (``split_sql``).

asyncpg encodes a ``text[]`` parameter value by value, with two checks against abstract base
classes each: 0.4 µs a value, most of what sending a chunk's thousand phone hashes or a batch's
thousand customer ids cost. One text costs a copy. The separator is a control character, which
no id, hash or time zone holds and JSON writes only escaped.
"""

from collections.abc import Sequence

SEPARATOR = "\x1f"


def split_sql(parameter: str) -> str:
    """The SQL expression splitting a joined parameter (``$1``) back into a ``text[]``."""
    return f"string_to_array({parameter}, E'\\x{ord(SEPARATOR):02x}')"


def joined(values: Sequence[str]) -> str:
    """The values as one text that ``split_sql`` gives back exactly: ValueError when a value
    holds the separator, or the list is a single empty text (which the split reads as no
    value)."""
    text = SEPARATOR.join(values)
    if text.count(SEPARATOR) != max(len(values) - 1, 0) or (len(values) == 1 and not text):
        raise ValueError("a value holds the list separator, or the list is one empty text")
    return text
