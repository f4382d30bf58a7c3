"""Complaints follow their customer's file (as followups/file_changes.py moves its tasks): an
erased file's complaints lose the customer's and the staff's words, a merged-away file's
complaints go to the survivor.

What stays of an erased file's complaint is what the store's statistics count: its category,
times, steps taken and by whom, and the compensation's amount.
"""

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

_ERASE_COMPLAINTS_SQL = text(
    """
    UPDATE complaint AS c SET points = ''
    FROM unnest(CAST(:stores AS text[]), CAST(:customers AS text[])) AS m(store_id, customer_id)
    WHERE c.store_id = m.store_id AND c.customer_id = m.customer_id
    """
)
_ERASE_STEPS_SQL = text(
    """
    UPDATE complaint_step AS s
    SET notes = '', cause = NULL, solution = CASE WHEN s.solution IS NULL THEN NULL ELSE '' END,
        compensation_note = NULL
    FROM complaint AS c,
         unnest(CAST(:stores AS text[]), CAST(:customers AS text[])) AS m(store_id, customer_id)
    WHERE c.store_id = m.store_id AND c.customer_id = m.customer_id AND s.complaint_id = c.id
    """
)
_REKEY_SQL = text(
    """
    UPDATE complaint AS c SET customer_id = m.survivor_id
    FROM unnest(CAST(:stores AS text[]), CAST(:customers AS text[]),
                CAST(:survivors AS text[])) AS m(store_id, customer_id, survivor_id)
    WHERE c.store_id = m.store_id AND c.customer_id = m.customer_id
    """
)


async def erase_complaints(
    session: AsyncSession, *, stores: list[str], customers: list[str]
) -> None:
    """The words of the erased files' complaints (``stores[i]``, ``customers[i]``)."""
    params = {"stores": stores, "customers": customers}
    await session.execute(_ERASE_STEPS_SQL, params)
    await session.execute(_ERASE_COMPLAINTS_SQL, params)


async def move_complaints(
    session: AsyncSession, *, stores: list[str], customers: list[str], survivors: list[str]
) -> None:
    """The merged-away files' complaints, onto their survivors."""
    await session.execute(
        _REKEY_SQL, {"stores": stores, "customers": customers, "survivors": survivors}
    )
