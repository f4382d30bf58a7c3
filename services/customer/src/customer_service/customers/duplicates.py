"""Duplicate candidates (DOMAIN.md §1, Hygiene): pairs of a store's active files that are likely
one person, with the keys that agree and a confidence.

A pair is a candidate when one of ``RULES`` holds: each names the keys that must all agree, and
why that is enough. Keys alone that many different people share (a name, a birthday, a street)
never make a candidate. The keys compared:

- ``phone``: the normalised numbers' keyed hashes overlap (``phone_hashes``);
- ``name_pinyin``: the names read the same (the first full-pinyin key: 王芳 and 汪芳 are
  ``wangfang``), so a name typed with the wrong character is caught;
- ``name_similar``: the names are similar by ``pg_trgm`` (王芳 and 王芳芳), at ``SIMILAR_NAME``;
- ``birthday``: the same solar date of birth;
- ``address``: the same district and street.

The store's active files are read once, through an index that leads with the store, and
joined with themselves in memory, one join per rule (hash joins on the keys); pages follow the
pair ``(customer_id, duplicate_id)`` (the smaller id first) in order. A page of a store of
100,000 files takes about a second on two busy cores (bench/duplicates.py): a report a manager
runs now and then, not a per-request lookup.
"""

from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from crm_libs.pagination import PageParams, encode_cursor
from crm_libs.principal import Principal
from crm_libs.problems import InvalidField, ProblemError


@dataclass(frozen=True)
class Rule:
    name: str
    keys: tuple[str, ...]
    confidence: float
    why: str


# The rule table: the one place that says which agreeing keys make a candidate.
RULES: tuple[Rule, ...] = (
    Rule(
        "same_phone",
        ("phone",),
        0.9,
        "a normalised number belongs to one household: on its own a candidate (a spouse sharing "
        "the landline is one too, and the manager sees the names differ before merging)",
    ),
    Rule(
        "pinyin_name_and_birthday",
        ("name_pinyin", "birthday"),
        0.8,
        "two agreeing keys; a name read the same on the same birth date is rarely two people "
        "in one store",
    ),
    Rule(
        "pinyin_name_and_address",
        ("name_pinyin", "address"),
        0.7,
        "two agreeing keys; the same name at one street is a re-registration more often than a "
        "namesake neighbour",
    ),
    Rule(
        "similar_name_and_birthday",
        ("name_similar", "birthday"),
        0.6,
        "two agreeing keys, the name only similar (a character added or dropped): the weakest",
    ),
)
# Not candidates, and why: a key many people share says nothing alone.
NOT_CANDIDATES = {
    "name_pinyin": "a city has thousands of 王芳: the same name alone is no evidence",
    "name_similar": "weaker still than an equal name",
    "birthday": "a store of 100,000 shares each birth date among about five files",
    "address": "a family, or a block of flats, shares a street",
}
# pg_trgm's similarity of two names for ``name_similar``
# (王芳 / 王芳芳 is 0.4, 张建国 / 张建华 0.33).
SIMILAR_NAME = 0.3
_RULE_BY_NAME = {r.name: r for r in RULES}


def confidence(rules: list[str]) -> float:
    """Each rule that holds is independent evidence: 1 - Π(1 - c) over them, two places."""
    doubt = 1.0
    for name in rules:
        doubt *= 1 - _RULE_BY_NAME[name].confidence
    return round(1 - doubt, 2)


# The store's pairs, one self-join per rule, the smaller id first; then the page of them after
# the cursor with the keys that agree. ``:store_id``, ``:after_a``, ``:after_b``, ``:limit``.
_PAIRS_SQL = f"""
    WITH files AS MATERIALIZED (
        -- The store's active files read once (through an index leading with the store), with
        -- the keys compared; every rule below joins this in memory.
        SELECT id, name, split_part(name_keys, ' ', 1) AS pinyin, birthday,
               address ->> 'district' AS district, address ->> 'street' AS street, phone_hashes
        FROM customer WHERE store_id = :store_id AND status = 'active'
    ), households AS (
        -- One hash aggregate over the store's numbers: the files sharing each number.
        SELECT array_agg(f.id) AS ids FROM files AS f, unnest(f.phone_hashes) AS h
        GROUP BY h HAVING count(*) > 1
    ), found AS (
        SELECT p.id AS a_id, q.id AS b_id, 'same_phone' AS rule
        FROM households AS g, unnest(g.ids) AS p(id), unnest(g.ids) AS q(id)
        WHERE p.id < q.id
        UNION ALL
        SELECT a.id, b.id, 'pinyin_name_and_birthday'
        FROM files AS a JOIN files AS b
          ON b.pinyin = a.pinyin AND b.birthday = a.birthday AND a.id < b.id
        WHERE a.pinyin <> ''
        UNION ALL
        SELECT a.id, b.id, 'pinyin_name_and_address'
        FROM files AS a JOIN files AS b
          ON b.pinyin = a.pinyin AND b.district = a.district AND b.street = a.street
         AND a.id < b.id
        WHERE a.pinyin <> ''
        UNION ALL
        SELECT a.id, b.id, 'similar_name_and_birthday'
        FROM files AS a JOIN files AS b
          ON b.birthday = a.birthday AND a.id < b.id
         AND similarity(a.name, b.name) >= {SIMILAR_NAME}
    ), pairs AS (
        SELECT a_id, b_id, array_agg(DISTINCT rule ORDER BY rule) AS rules
        FROM found
        WHERE (a_id, b_id) > (:after_a, :after_b)
        GROUP BY a_id, b_id
        ORDER BY a_id, b_id
        LIMIT :limit
    )
    SELECT p.a_id, p.b_id, p.rules,
           a.name AS a_name, b.name AS b_name, a.created_at AS a_created, b.created_at AS b_created,
           a.phone_hashes && b.phone_hashes AS phone,
           split_part(a.name_keys, ' ', 1) = split_part(b.name_keys, ' ', 1) AS name_pinyin,
           similarity(a.name, b.name) >= {SIMILAR_NAME} AS name_similar,
           coalesce(a.birthday = b.birthday, false) AS birthday,
           coalesce(a.address ->> 'district' = b.address ->> 'district'
                    AND a.address ->> 'street' = b.address ->> 'street', false) AS address
    FROM pairs AS p JOIN customer AS a ON a.id = p.a_id JOIN customer AS b ON b.id = p.b_id
    ORDER BY p.a_id, p.b_id
"""  # noqa: S608 (only the module's constant is interpolated)
_KEYS = ("phone", "name_pinyin", "name_similar", "birthday", "address")


def store_of_request(principal: Principal, store_id: str | None) -> str:
    """The store whose files are compared: the caller's own, or the one head office names."""
    scope = principal.store_scope()
    if scope is None:
        if store_id is None:
            raise InvalidField("store_id", "head office names the store whose files to compare")
        return store_id
    if store_id is not None and store_id != scope:
        raise ProblemError("Another store's files", status=403, title="Forbidden")
    return scope


def _cursor_pair(page: PageParams) -> tuple[str, str]:
    if page.after is None:
        return "", ""
    a, sep, b = page.after.partition(" ")
    if not sep or not a or not b:
        raise ProblemError("The cursor is not one this API issued", status=400)
    return a, b


async def candidates(
    session: AsyncSession, *, principal: Principal, store_id: str | None, page: PageParams
) -> tuple[list[dict[str, Any]], str | None]:
    """A page of the store's candidate pairs, and the cursor of the next page."""
    store = store_of_request(principal, store_id)
    after_a, after_b = _cursor_pair(page)
    rows = (
        await session.execute(
            text(_PAIRS_SQL),
            {"store_id": store, "after_a": after_a, "after_b": after_b, "limit": page.limit + 1},
        )
    ).mappings()
    items = []
    for row in rows:
        first_is_older = (row["a_created"], row["a_id"]) <= (row["b_created"], row["b_id"])
        items.append(
            {
                "customer_id": row["a_id"],
                "duplicate_id": row["b_id"],
                "names": [row["a_name"], row["b_name"]],
                "keys": [k for k in _KEYS if row[k]],
                "rules": list(row["rules"]),
                "confidence": confidence(list(row["rules"])),
                # The older file has the longer history: the natural survivor.
                "suggested_survivor_id": row["a_id"] if first_is_older else row["b_id"],
            }
        )
    more = len(items) > page.limit
    items = items[: page.limit]
    cursor = (
        encode_cursor(f"{items[-1]['customer_id']} {items[-1]['duplicate_id']}")
        if more and items
        else None
    )
    return items, cursor
