"""``stage_batch`` sends a batch's keys as one text split by the server on a control character and
its envelopes packed, joined on it: a value holding it, or an empty key, is refused before
anything is sent."""

import asyncio
import uuid
from typing import Any

import pytest

from crm_libs.events.outbox import pack_envelopes, stage_batch, unpack_envelopes


class Recording:
    """An asyncpg connection's ``execute``, recorded."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    async def execute(self, *args: Any) -> None:
        self.calls.append(args)


def test_a_batch_goes_as_one_text_of_keys_and_its_envelopes_packed() -> None:
    conn = Recording()
    events = [("e1", "a", '{"n": 1}'), ("e2", "b", '{"n": "\\u001f"}')]
    asyncio.run(stage_batch(conn, topic="t", events=events))
    ((_, event_id, topic, keys, packed, count),) = conn.calls
    assert (event_id, topic, count) == ("e1", "t", 2)
    assert keys.split("\x1f") == ["a", "b"]
    assert isinstance(packed, bytes)
    assert unpack_envelopes(packed) == ['{"n": 1}', '{"n": "\\u001f"}']


def test_a_thousand_envelopes_pack_to_a_fraction_of_their_text() -> None:
    envelopes = [
        f'{{"event_id": "{uuid.uuid4()}", "type": "customer.registered", "customer_id": '
        f'"{uuid.uuid4()}", "payload": {{"timezone": "Asia/Shanghai", "status": "active"}}}}'
        for _ in range(1000)
    ]
    packed = pack_envelopes(envelopes)
    assert len(packed) * 3 < sum(map(len, envelopes))
    assert unpack_envelopes(packed) == envelopes


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
