"""The daily special-day care job: ``special_day`` tasks created ahead of each occasion.

Once a store-local day per store (``special_day_run``), a store's occasions falling from today
to today plus their kind's lead time (``Settings.special_day_lead_days_*``) are given a task
each, due the lead time before the day (today when the day is nearer than that), on the
file owner's list. ``special_day_planned`` holds one row per customer, occasion and year in
the same transaction as the task, so a rerun, a restart or a second replica creates nothing
twice. One replica leads the job at a time (a PostgreSQL advisory lock for the run), as
scoring's daily ageing does (``scoring_service.scores.scheduled``).

Who gets which occasion, from DOMAIN.md:

- a file's own days (birthday, the spouse's birthday, the wedding anniversary) go to every
  active file that holds the date, prospects too: the customer gave the date, and a birthday
  call is the natural next contact of a prospect's pipeline (collected → contacted → …);
- the festivals and the season changes go only to customers who have bought. Special care
  (特殊维护) is part of follow-up care after a sale (§4, 售后回访): it keeps old customers
  ("维护一个老客户"); a prospect is worked through its pipeline, not sent a care task per
  festival, which on a store's collected lists would bury the day's list under them.
- Archived, erased and merged files get none; a spouse's birthday counts while the spouse's
  file is active (an archived spouse may have died: no birthday call for them).

A file registered or changed after its store's run of the day (a new customer whose birthday
is tomorrow) is planned at the next check: the files changed since the run are planned again
(``customer_file.updated_at``), which creates only what was not planned. A spouse's changed
birthday reaches the other file's list with the next day's run.

Reading and computing happen outside the store's lock; the writing statement runs under it
(:func:`customers.service.lock_stores`, taken by the consumer too) and checks again that each
file is active and takes its owner as it is then, so an archive or a new owner applied
meanwhile is never undone.
"""

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_libs.events.driver import driver_connection
from crm_libs.ids import new_id
from engagement_service.care.daily import as_leader, check_every
from engagement_service.care.occasions import CARE, OccasionKind
from engagement_service.care.special_days import (
    Occurrence,
    PersonalDates,
    personal_occasions,
    shared_occasions,
)
from engagement_service.config import Settings
from engagement_service.customers.service import lock_stores

log = logging.getLogger(__name__)

SPECIAL_DAY = "special_day"
# Unique among this database's one-bigint advisory locks (the stores' locks use the two-int
# space, customers.service.STORE_LOCK_SPACE).
SPECIAL_DAYS_LOCK = 72_365_201

# Every store with an active file, the time zone of one of them (a store's files have their
# store's), the local day it was last planned for and whether a file changed since: a loose
# scan of the active files' (store, updated_at) index, a few probes per store, so the minute's
# check costs the number of stores, not of files.
_STORE_DAYS_SQL = """
    WITH RECURSIVE stores AS (
        (SELECT store_id FROM customer_file WHERE status = 'active' ORDER BY store_id LIMIT 1)
        UNION ALL
        SELECT (SELECT f.store_id FROM customer_file AS f
                WHERE f.status = 'active' AND f.store_id > s.store_id
                ORDER BY f.store_id LIMIT 1)
        FROM stores AS s WHERE s.store_id IS NOT NULL
    )
    SELECT s.store_id,
           (SELECT f.timezone FROM customer_file AS f
            WHERE f.store_id = s.store_id AND f.status = 'active' AND f.timezone IS NOT NULL
            LIMIT 1) AS timezone,
           r.planned_on, r.planned_at,
           EXISTS (SELECT 1 FROM customer_file AS f
                   WHERE f.store_id = s.store_id AND f.status = 'active'
                     AND f.updated_at > r.planned_at) AS changed
    FROM stores AS s LEFT JOIN special_day_run AS r USING (store_id)
    WHERE s.store_id IS NOT NULL
"""

# The store's active files with a day of their own or a purchase; the spouse's birthday from
# the spouse's file (any store's: a couple may be members of two).
_FILES_SQL = """
    SELECT f.customer_id, f.birthday, f.birthday_calendar, f.wedding_anniversary,
           s.birthday AS spouse_birthday, s.birthday_calendar AS spouse_birthday_calendar,
           EXISTS (SELECT 1 FROM product_bought AS pb WHERE pb.customer_id = f.customer_id)
               AS bought
    FROM customer_file AS f
    LEFT JOIN customer_file AS s ON s.customer_id = f.spouse_customer_id AND s.status = 'active'
    WHERE f.store_id = $1 AND f.status = 'active'
      AND ($2::timestamptz IS NULL OR f.updated_at > $2::timestamptz)
"""

_PLANNED_SQL = "SELECT planned_on, planned_at FROM special_day_run WHERE store_id = $1"
# A file's ``updated_at`` is its writer's transaction start, which may come before a read that
# misses the file because its writer has not committed yet: the next look goes back this far
# before the read, and planning again what it already planned creates nothing.
_READ_MARGIN = timedelta(minutes=1)
_MARK_PLANNED_SQL = """
    INSERT INTO special_day_run (store_id, planned_on, planned_at) VALUES ($1, $2, $3)
    ON CONFLICT (store_id) DO UPDATE
        SET planned_on = excluded.planned_on, planned_at = excluded.planned_at
"""

# The occasions wanted, as arrays: each recorded once per customer, occasion and year, and
# given its task only when recorded now; the file checked active, and its owner read, under the
# store's lock.
_PLAN_SQL = """
    WITH wanted AS (
        SELECT * FROM unnest($2::text[], $3::text[], $4::integer[], $5::date[], $6::date[],
                             $7::text[], $8::text[], $9::text[])
            AS w(customer_id, occasion, occasion_year, occasion_on, due_on, method, purpose,
                 task_id)
    ), planned AS (
        INSERT INTO special_day_planned
            (customer_id, occasion, occasion_year, store_id, occasion_on, task_id)
        SELECT w.customer_id, w.occasion, w.occasion_year, f.store_id, w.occasion_on, w.task_id
        FROM wanted AS w JOIN customer_file AS f ON f.customer_id = w.customer_id
        WHERE f.store_id = $1 AND f.status = 'active'
        ON CONFLICT DO NOTHING
        RETURNING task_id
    )
    INSERT INTO task (id, store_id, customer_id, kind, due_on, method, purpose, status,
                      assignee_staff_id, occasion, occasion_on)
    SELECT w.task_id, $1, w.customer_id, 'special_day', w.due_on, w.method, w.purpose, 'open',
           f.owner_staff_id, w.occasion, w.occasion_on
    FROM planned AS p
    JOIN wanted AS w ON w.task_id = p.task_id
    JOIN customer_file AS f ON f.customer_id = w.customer_id
"""


@dataclass(frozen=True, slots=True)
class LeadDays:
    """How many days ahead of its day each kind of occasion is put on the list."""

    personal: int
    festival: int
    season: int

    @classmethod
    def of(cls, settings: Settings) -> "LeadDays":
        return cls(
            personal=settings.special_day_lead_days_personal,
            festival=settings.special_day_lead_days_festival,
            season=settings.special_day_lead_days_season,
        )

    def __getitem__(self, kind: OccasionKind) -> int:
        return {
            OccasionKind.PERSONAL: self.personal,
            OccasionKind.FESTIVAL: self.festival,
            OccasionKind.SEASON: self.season,
        }[kind]


@dataclass(frozen=True, slots=True)
class StoreDay:
    """A store due for planning: the local day it has reached, and for a store planned that day
    already, when its files were read (only files changed since are planned again)."""

    store_id: str
    today: date
    since: datetime | None = None


@dataclass(frozen=True, slots=True)
class Wanted:
    """A task a store's run asks for."""

    customer_id: str
    occurrence: Occurrence
    due_on: date


def wanted_tasks(
    files: list[tuple[str, PersonalDates, bool]], *, today: date, lead: LeadDays
) -> list[Wanted]:
    """The tasks a store's files ask for on a day: each occasion from today to today plus its
    kind's lead, due that lead before it or today. ``files``: (customer id, its dates, whether
    the customer has bought)."""
    end = today + timedelta(days=max(lead.personal, lead.festival, lead.season))

    def due(occurrence: Occurrence) -> date | None:
        days = lead[CARE[occurrence.occasion].kind]
        if occurrence.on > today + timedelta(days=days):
            return None
        return max(today, occurrence.on - timedelta(days=days))

    shared = [(o, on) for o in shared_occasions(start=today, end=end) if (on := due(o))]
    # A store's files share their dates (an imported sheet of 100,000 people born over some
    # forty years: a birthday per eight files), and a file's occasions are its dates' alone:
    # each PersonalDates is looked up once a run. By identity: store_files gives the files that
    # share their dates one object (no hashing of five fields per file), and ``files`` holds
    # every object until the loop is done, so no identity is reused meanwhile.
    personal: dict[int, list[tuple[Occurrence, date]]] = {}
    wanted = []
    for customer_id, dates, bought in files:
        if (occasions := personal.get(id(dates))) is None:
            occasions = personal[id(dates)] = [
                (o, on)
                for o in personal_occasions(dates, start=today, end=end)
                if (on := due(o)) is not None
            ]
        if occasions:
            wanted += [Wanted(customer_id, o, due_on) for o, due_on in occasions]
        if bought:
            wanted += [Wanted(customer_id, o, due_on) for o, due_on in shared]
    return wanted


async def stores_due(
    session: AsyncSession, *, now: datetime, default_timezone: str
) -> list[StoreDay]:
    """The stores whose local day has moved on since they were last planned, or with files
    changed since."""
    rows = await (await driver_connection(session)).fetch(_STORE_DAYS_SQL)
    due = []
    for row in rows:
        try:
            today = now.astimezone(ZoneInfo(row["timezone"] or default_timezone)).date()
        except (ZoneInfoNotFoundError, ValueError):
            # The customer service validates a store's zone; one it did not is skipped, loudly,
            # rather than stopping every other store's care.
            log.warning("store time zone unknown", extra={"fields": dict(row)})
            continue
        if row["planned_on"] is None or row["planned_on"] < today:
            due.append(StoreDay(row["store_id"], today))
        elif row["planned_on"] == today and row["changed"]:
            due.append(StoreDay(row["store_id"], today, since=row["planned_at"]))
    return due


async def store_files(
    session: AsyncSession, *, store_id: str, since: datetime | None = None
) -> list[tuple[str, PersonalDates, bool]]:
    """A store's active files (those changed after ``since`` when given): their own days and
    whether they have bought."""
    rows = await (await driver_connection(session)).fetch(_FILES_SQL, store_id, since)
    # One PersonalDates for the files that share their dates (wanted_tasks looks each up once).
    shared: dict[tuple[object, ...], PersonalDates] = {}
    files = []
    for (
        customer_id,
        birthday,
        calendar,
        anniversary,
        spouse_birthday,
        spouse_calendar,
        bought,
    ) in rows:
        key = (birthday, calendar, anniversary, spouse_birthday, spouse_calendar)
        if (dates := shared.get(key)) is None:
            dates = shared[key] = PersonalDates(
                birthday=birthday,
                birthday_calendar=calendar,
                wedding_anniversary=anniversary,
                spouse_birthday=spouse_birthday,
                spouse_birthday_calendar=spouse_calendar,
            )
        files.append((customer_id, dates, bought))
    return files


async def plan_store(
    session: AsyncSession,
    *,
    store: StoreDay,
    read_at: datetime,
    wanted: list[Wanted],
) -> int | None:
    """Create the store's wanted tasks not created before and record the day and when its files
    were read; how many were created, or None if another run got there first. The caller
    commits."""
    store_id, today = store.store_id, store.today
    await lock_stores(session, store_ids=[store_id])
    db = await driver_connection(session)
    last = await db.fetchrow(_PLANNED_SQL, store_id)
    if last is not None and (
        last["planned_on"] > today
        or (
            last["planned_on"] == today
            and (store.since is None or last["planned_at"] > store.since)
        )
    ):
        return None
    created = 0
    if wanted:
        status = await db.execute(
            _PLAN_SQL,
            store_id,
            [w.customer_id for w in wanted],
            [w.occurrence.occasion.value for w in wanted],
            [w.occurrence.year for w in wanted],
            [w.occurrence.on for w in wanted],
            [w.due_on for w in wanted],
            [CARE[w.occurrence.occasion].method.value for w in wanted],
            [CARE[w.occurrence.occasion].purpose for w in wanted],
            [new_id() for _ in wanted],
        )
        created = int(status.rsplit(" ", 1)[-1])  # "INSERT 0 n"
    await db.execute(_MARK_PLANNED_SQL, store_id, today, read_at - _READ_MARGIN)
    return created


async def plan_due_stores(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    now: datetime,
    lead: LeadDays,
    default_timezone: str,
) -> dict[str, int]:
    """Plan every store whose local day has moved on, each in its own transaction; returns the
    tasks created per store planned."""
    async with sessionmaker() as session:
        due = await stores_due(session, now=now, default_timezone=default_timezone)
    planned = {}
    for store in due:
        async with sessionmaker() as session:
            read_at = (await session.execute(text("SELECT clock_timestamp()"))).scalar_one()
            files = await store_files(session, store_id=store.store_id, since=store.since)
        wanted = wanted_tasks(files, today=store.today, lead=lead)
        async with sessionmaker() as session, session.begin():
            created = await plan_store(session, store=store, read_at=read_at, wanted=wanted)
        if created is not None:
            planned[store.store_id] = created
    return planned


async def plan_as_leader(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    now: datetime,
    lead: LeadDays,
    default_timezone: str,
) -> dict[str, int] | None:
    """Run :func:`plan_due_stores` if no other replica is; None when another one leads."""
    return await as_leader(
        sessionmaker,
        lock=SPECIAL_DAYS_LOCK,
        run=lambda: plan_due_stores(
            sessionmaker, now=now, lead=lead, default_timezone=default_timezone
        ),
    )


async def special_days_worker(app: FastAPI) -> None:
    """Every ``special_day_check_seconds``, plan the stores that have passed their local
    midnight (first at start-up: a replica started after midnight plans at once)."""
    settings: Settings = app.state.settings

    async def check() -> None:
        planned = await plan_as_leader(
            app.state.sessionmaker,
            now=datetime.now(UTC),
            lead=LeadDays.of(settings),
            default_timezone=settings.default_timezone,
        )
        if planned:
            log.info(
                "special days planned",
                extra={"fields": {"stores": len(planned), "tasks": sum(planned.values())}},
            )

    await check_every(settings.special_day_check_seconds, check)
