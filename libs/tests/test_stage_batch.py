"""``stage_batch`` sends a batch's keys and envelopes each as one text split by the server on a
control character: a value holding it, or an empty key, is refused before anything is sent."""

import asyncio
from typing import Any

import pytest

from crm_libs.events.outbox import stage_batch


class Recording:
    """An asyncpg connection's ``execute``, recorded."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    async def execute(self, *args: Any) -> None:
        self.calls.append(args)


def test_a_batch_goes_as_one_text_each_for_keys_and_envelopes() -> None:
    conn = Recording()
    events = [("e1", "a", '{"n": 1}'), ("e2", "b", '{"n": "\\u001f"}')]
    asyncio.run(stage_batch(conn, topic="t", events=events))
    ((_, event_id, topic, keys, envelopes, count),) = conn.calls
    assert (event_id, topic, count) == ("e1", "t", 2)
    assert keys.split("\x1f") == ["a", "b"]
    assert envelopes.split("\x1f") == ['{"n": 1}', '{"n": "\\u001f"}']


@pytest.mark.parametrize(
    "events",
    [
        [("e1", "a\x1fb", "{}")],
        [("e1", "", "{}")],
        [("e1", "a", '{"n": "\x1f"}')],
    ],
)
def test_a_value_the_split_would_misread_is_refused(events: list[tuple[str, str, str]]) -> None:
    conn = Recording()
    with pytest.raises(ValueError, match="separator"):
        asyncio.run(stage_batch(conn, topic="t", events=events))
    assert conn.calls == []
