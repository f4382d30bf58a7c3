"""Searching customer files: by name, pinyin, phone; filtered by store, owner, score and status.

Every kind of query has an index leading with the store (the store is in every staff member's
query, the principal's scope); each was checked with ``EXPLAIN ANALYZE`` over a million files
(``bench/search.py`` prints the plans):

- Han text (``王``, ``国藩``, ``曾国藩``): ``name`` on ``ix_customer_store_name_trgm`` (pg_trgm).
  pg_trgm pads a word only at the ends the pattern fixes, so a fragment of three characters or
  more is matched anywhere (``%国藩x%``); one or two characters, which have no trigram of their
  own, match at the start of the name (the surname, or a two-character name) and two also at its
  end (a given name): ``王%``, ``国藩%`` or ``%国藩``.
- Letters (``zgf``, ``zengg``, ``zengguofan``): a prefix of any word of ``name_keys``
  (customers/pinyin.py) on ``ix_customer_store_name_keys``.
- A phone: its last four digits in ``phone_tails``, or the whole number's keyed hash in
  ``phone_hashes``, both GIN. Roles that see numbers masked may give only those two (a tail grown
  a digit at a time would recover the number); the others may give a longer tail, whose last four
  digits the index narrows and ``longer_tail`` the rest.
- ``ids``: the files named (the primary key), for a list elsewhere that shows their names.
- ``fields``: a sparse read selects only the columns asked for (``SPARSE_FIELDS``: the id, the
  name, the gender and whether the file has a number, read off its lookup hashes), so nothing
  encrypted is read, decrypted or disclosed: a list elsewhere showing names, or a campaign
  addressing its recipients, asks for no phones.
- Filters: ``value_tier`` and ``lifecycle`` (the score's read copy on the file) on
  ``ix_customer_store_tier`` / ``ix_customer_store_lifecycle``, in id order for a page;
  ``owner_staff_id`` on ``ix_customer_store_owner``.

Pages are in id order, after the cursor's id.
"""

from typing import Any, Literal

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Select,
    Text,
    and_,
    any_,
    bindparam,
    func,
    literal_column,
    or_,
    select,
)
from sqlmodel import col

from crm_libs.db import driver_sql
from crm_libs.pagination import PageParams, keyset
from crm_libs.principal import Principal
from crm_libs.problems import InvalidField
from customer_service.customers import name_queries, visibility
from customer_service.customers.models import Customer
from customer_service.customers.phones import (
    TAIL_DIGITS,
    looks_like_phone,
    masked_phone_query,
    normalise_phone,
    phone_lookup_hash,
)

ValueTier = Literal["vip", "major", "medium", "small", "inactive", "prospect"]
Lifecycle = Literal[
    "new_this_year",
    "active_core",
    "active_second_line",
    "in_service_not_bought",
    "stopped",
    "lost",
]
Status = Literal["active", "archived", "merged", "erased"]
# What a sparse read may ask for: none of them sensitive (visibility.py) or encrypted. The id is
# always given (whose the name is, and the cursor).
SPARSE_FIELDS = ("id", "name", "gender", "has_phone")

# pg_trgm reads a word's first two characters (padded) and last one: shorter fragments than this
# are matched at the ends of the name only.
_TRIGRAM = 3
# The text search configuration of the index expression, written as the index has it (a bound
# value would be another expression to the planner, and the index would not match).
_SIMPLE: ColumnElement[str] = literal_column("'simple'")
_NAME_KEYS = func.to_tsvector(_SIMPLE, col(Customer.name_keys))


def matching(q: str, *, principal: Principal, phone_hash_key: str) -> ColumnElement[bool]:
    """What ``q`` finds: a phone (digits, spaces, dashes, brackets, a leading +) or a name."""
    if looks_like_phone(q):
        return _by_phone(q, principal=principal, phone_hash_key=phone_hash_key)
    return _by_name(name_queries.normalise_name_query(q, field="q"))


def _by_name(query: name_queries.NameQuery) -> ColumnElement[bool]:
    if query.kind == "letters":
        return _NAME_KEYS.op("@@")(func.to_tsquery(_SIMPLE, query.tsquery))
    text = query.text  # Han characters only: nothing LIKE would read as a wildcard
    name = col(Customer.name)
    if len(text) >= _TRIGRAM:
        return name.like(f"%{text}%")
    if len(text) == 1:
        return name.like(f"{text}%")
    return or_(name.like(f"{text}%"), name.like(f"%{text}"))


def _by_phone(q: str, *, principal: Principal, phone_hash_key: str) -> ColumnElement[bool]:
    if visibility.shows_whole("phone", principal.role):
        whole = _whole_number(q)
        if whole is not None:
            return _has_number(whole, phone_hash_key)
        digits = "".join(c for c in q if c.isdigit())
        if len(digits) < TAIL_DIGITS:
            raise InvalidField("q", f"search a phone by at least its last {TAIL_DIGITS} digits")
        return col(Customer.phone_tails).contains([digits[-TAIL_DIGITS:]])
    digits, is_tail = masked_phone_query(q)
    if is_tail:
        return col(Customer.phone_tails).contains([digits])
    return _has_number(digits, phone_hash_key)


def _whole_number(q: str) -> str | None:
    try:
        return normalise_phone(q, field="q")
    except InvalidField:
        return None


def _has_number(e164: str, phone_hash_key: str) -> ColumnElement[bool]:
    return col(Customer.phone_hashes).contains([phone_lookup_hash(e164, key=phone_hash_key)])


def sparse_fields(fields: str | None) -> tuple[str, ...] | None:
    """The columns of ``?fields=`` (comma-separated, in ``SPARSE_FIELDS`` order, the id always
    among them), or None for whole files; 422 naming ``fields`` for any other."""
    if fields is None:
        return None
    asked = {f.strip() for f in fields.split(",")}
    if unknown := sorted(asked - set(SPARSE_FIELDS)):
        raise InvalidField(
            "fields", f"{', '.join(unknown)}: a sparse read gives {', '.join(SPARSE_FIELDS)}"
        )
    return tuple(f for f in SPARSE_FIELDS if f in asked or f == "id")


def longer_tail(q: str | None, *, principal: Principal) -> str | None:
    """The digits a page's numbers must end with beyond the indexed last four, when ``q`` is such
    a tail (only roles that see numbers whole may search by one)."""
    if not q or not q.isdigit() or len(q) <= TAIL_DIGITS:
        return None
    if not visibility.shows_whole("phone", principal.role) or _whole_number(q) is not None:
        return None
    return q


def statement(
    *,
    principal: Principal,
    page: PageParams,
    phone_hash_key: str,
    store_id: str | None = None,
    q: str | None = None,
    owner_staff_id: str | None = None,
    value_tier: ValueTier | None = None,
    lifecycle: Lifecycle | None = None,
    status: Status = "active",
    ids: list[str] | None = None,
    columns: tuple[str, ...] | None = None,
) -> Select[Any]:
    """The search as one SELECT of whole files, or of ``columns`` alone (also what
    ``bench/search.py`` times raw)."""
    conditions: list[ColumnElement[bool]] = [col(Customer.status) == status]
    if (scope := principal.store_scope()) is not None:
        conditions.append(col(Customer.store_id) == scope)
    if store_id:
        conditions.append(col(Customer.store_id) == store_id)
    if q:
        conditions.append(matching(q, principal=principal, phone_hash_key=phone_hash_key))
    if owner_staff_id:
        conditions.append(col(Customer.owner_staff_id) == owner_staff_id)
    if value_tier:
        conditions.append(col(Customer.value_tier) == value_tier)
    if lifecycle:
        conditions.append(col(Customer.lifecycle) == lifecycle)
    if ids is not None:
        # One array value, not a placeholder per id: one statement whatever the count.
        conditions.append(col(Customer.id) == any_(bindparam("ids", ids, type_=ARRAY(Text))))
    chosen = select(*(_sparse_column(c) for c in columns)) if columns else select(Customer)
    return keyset(chosen.where(and_(*conditions)), col(Customer.id), page)


def _sparse_column(name: str) -> ColumnElement[Any]:
    if name == "has_phone":
        # Each number has its lookup hash: whether there is one, without the numbers.
        return (func.coalesce(func.cardinality(col(Customer.phone_hashes)), 0) > 0).label(name)
    column: ColumnElement[Any] = Customer.__table__.c[name]  # type: ignore[attr-defined]
    return column


async def search(
    conn: Any,
    *,
    principal: Principal,
    page: PageParams,
    phone_hash_key: str,
    store_id: str | None = None,
    q: str | None = None,
    owner_staff_id: str | None = None,
    value_tier: ValueTier | None = None,
    lifecycle: Lifecycle | None = None,
    status: Status = "active",
    ids: list[str] | None = None,
    columns: tuple[str, ...] | None = None,
) -> list[Any]:
    """A page of files (``page.limit + 1`` rows), on the driver connection: the statement is
    compiled once per shape of query, its values bound."""
    sql, args = driver_sql(
        statement(
            principal=principal,
            page=page,
            phone_hash_key=phone_hash_key,
            store_id=store_id,
            q=q,
            owner_staff_id=owner_staff_id,
            value_tier=value_tier,
            lifecycle=lifecycle,
            status=status,
            ids=ids,
            columns=columns,
        )
    )
    rows: list[Any] = await conn.fetch(sql, *args)
    return rows
