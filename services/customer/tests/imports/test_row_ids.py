"""A chunk's ids, their random bits read once per chunk: file ids are UUIDv7 as
``crm_libs.ids.new_id`` writes them (its millisecond in front, so files sort by creation), event
ids UUIDv4 as ``uuid.uuid4`` does, none repeated however many a chunk asks for."""

import pickle
import time
import uuid
from collections import Counter

from crm_libs.ids import new_id
from customer_service.imports.customer_checks import Checked
from customer_service.imports.customer_sealing import Sealed
from customer_service.imports.row_ids import RowIds


def test_file_and_event_ids_are_uuids_of_their_versions_and_never_repeat() -> None:
    before = time.time_ns() // 1_000_000
    ids = RowIds(100)
    files = [ids.file_id() for _ in range(1_000)]  # ten times the chunk: read again
    events = [ids.event_id() for _ in range(1_000)]
    after = time.time_ns() // 1_000_000
    assert len(set(files) | set(events)) == 2_000
    for text in files:
        parsed = uuid.UUID(text)
        assert str(parsed) == text and parsed.version == 7 and parsed.variant == uuid.RFC_4122
        assert before <= parsed.int >> 80 <= after
    for text in events:
        parsed = uuid.UUID(text)
        assert str(parsed) == text and parsed.version == 4 and parsed.variant == uuid.RFC_4122
    # Written as new_id writes them: same shape, sorting after an id made before.
    assert all(len(f) == len(new_id()) and f[14] == new_id()[14] == "7" for f in files[:10])
    assert new_id()[:13] <= RowIds(1).file_id()[:13]
    # The random digits are all drawn: every hex digit in every random place, and the
    # variant's two random bits.
    for at in [*range(15, 18), *range(19, 23), *range(24, 36)]:
        assert len({f[at] for f in files} - {"-"}) == (4 if at == 19 else 16), at
    assert set(Counter(e[19] for e in events)) == set("89ab")


def test_a_checked_row_travels_pickled_as_the_named_tuple_it_is() -> None:
    sealed = Sealed(b"\x00\x01", "event", "{}")
    checked = Checked(2, "f", None, [], file_id="id", name="王五", sealed=sealed)
    blob = pickle.dumps([checked, checked], protocol=pickle.HIGHEST_PROTOCOL)
    again = pickle.loads(blob)  # noqa: S301 - our own bytes
    assert again == [checked, checked] and again[0] is again[1]
    assert type(again[0]) is Checked and type(again[0].sealed) is Sealed
    assert again[0].sealed.envelope == "{}" and again[0].name == "王五"
