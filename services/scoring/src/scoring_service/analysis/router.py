"""The analysis tables a store manager reads: JSON, or CSV and a workbook by ``Accept``."""

from dataclasses import asdict
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Header, Query, Response

from crm_libs.events.driver import driver_connection
from crm_libs.problems import InvalidField, problem_responses
from crm_libs.tables import JSON, TABLE_CONTENT, media_type, table_response
from scoring_service.analysis import churn, consumption, contact_times, periods
from scoring_service.analysis.schemas import (
    CHURN_COLUMNS,
    CONSUMPTION_COLUMNS,
    CONTACT_COLUMNS,
    ChurnTable,
    ConsumptionTable,
    ContactTimesTable,
)
from scoring_service.deps import PrincipalDep, ReadSessionDep, SettingsDep

router = APIRouter(prefix="/stores/{store_id}/analysis", tags=["analysis"])

_From = Annotated[
    date | None,
    Query(alias="from", description="First day (store-local); the 12 months to `to` if absent"),
]
_To = Annotated[
    date | None,
    Query(alias="to", description="Last day (store-local, included); today if absent"),
]
_Accept = Annotated[str | None, Header()]
# The periods the data can answer (analysis/periods.py), as each route's description says.
_PERIOD_RULES = (
    "422 (problem+json naming the field and the rule) when the period is reversed, `to` is "
    "after the store's today, an explicit `from` is before the first day of the month of the "
    "store's first data (its first purchase or the first file scoring saw; the detail names "
    "that day and the earliest `from`), `from` is before 1990 or the period is longer than "
    "3660 days; a `from` in that month before the first data simply finds nothing before it. "
    "Without `from` the twelve months begin no earlier than the store's first data; a store "
    "with no data answers empty tables."
)
_RESPONSES = {**problem_responses(401, 403, 404, 406, 422), **TABLE_CONTENT}


@router.get(
    "/consumption",
    response_model=ConsumptionTable,
    summary="Consumption structure: customers, purchases, revenue and share per group",
    description=(
        "Grouped `by` month, tier (the value tier now), product, category, staff (who served) "
        "or region (the district of the customer's address), over `from`..`to` (store-local "
        "days, both included; at most 3660). Refunds are taken from the purchases they refund. "
        "`Accept: text/csv` or the XLSX type answer the items as a spreadsheet. " + _PERIOD_RULES
    ),
    responses=_RESPONSES,
)
async def consumption_table(
    store_id: str,
    session: ReadSessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    by: consumption.By = "month",
    since: _From = None,
    until: _To = None,
    accept: _Accept = None,
) -> Response | ConsumptionTable:
    principal.require_store(store_id, what="store")
    media = media_type(accept)
    db = await driver_connection(session)
    days = await periods.store_days(db, store_id)
    zone = days.timezone
    period = periods.checked_period(
        start=since,
        end=until,
        today=periods.today_in(zone, as_of=settings.as_of),
        first_day=days.first_day,
    )
    groups = await consumption.consumption(db, store_id=store_id, by=by, period=period)
    rows = [asdict(g) for g in groups]
    if media != JSON:
        return table_response(
            media=media, name=f"consumption-by-{by}", columns=CONSUMPTION_COLUMNS, rows=rows
        )
    return ConsumptionTable.model_validate(
        {"store_id": store_id, "from": period.start, "to": period.end, "by": by, "items": rows}
    )


@router.get(
    "/churn",
    response_model=ChurnTable,
    summary="Lost and stopped customers of a year, and their rates",
    description=(
        "The lifecycle as of the year's last day (today for the current year), with the store's "
        "thresholds; the base is the customers who had bought by then and were not lost at the "
        "previous year's end. `year` is this year if absent."
    ),
    responses=_RESPONSES,
)
async def churn_table(
    store_id: str,
    session: ReadSessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    year: Annotated[int | None, Query()] = None,
    accept: _Accept = None,
) -> Response | ChurnTable:
    principal.require_store(store_id, what="store")
    media = media_type(accept)
    db = await driver_connection(session)
    today = periods.today_in(await periods.store_timezone(db, store_id), as_of=settings.as_of)
    year = year or today.year
    if year > today.year:
        raise InvalidField("year", f"{year} has not begun (this year is {today.year})")
    if year <= periods.EARLIEST.year:
        raise InvalidField("year", f"is before {periods.EARLIEST.year + 1}")
    counted = await churn.churn(db, store_id=store_id, year=year, today=today)
    rows = [asdict(counted)]
    if media != JSON:
        return table_response(media=media, name=f"churn-{year}", columns=CHURN_COLUMNS, rows=rows)
    return ChurnTable.model_validate({"store_id": store_id, "items": rows})


@router.get(
    "/contact-times",
    response_model=ContactTimesTable,
    summary="Contacts and answered contacts by weekday and hour, best first",
    description=(
        "From the visits and calls logged over `from`..`to` (store-local days): a phone call, "
        "the expert's call, a home or in-store visit is a contact, answered when the customer "
        "was reached. Weekday 1 is Monday; hours in the store's time zone. " + _PERIOD_RULES
    ),
    responses=_RESPONSES,
)
async def contact_times_table(
    store_id: str,
    session: ReadSessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    since: _From = None,
    until: _To = None,
    accept: _Accept = None,
) -> Response | ContactTimesTable:
    principal.require_store(store_id, what="store")
    media = media_type(accept)
    db = await driver_connection(session)
    days = await periods.store_days(db, store_id)
    zone = days.timezone
    period = periods.checked_period(
        start=since,
        end=until,
        today=periods.today_in(zone, as_of=settings.as_of),
        first_day=days.first_day,
    )
    slots = await contact_times.contact_times(db, store_id=store_id, period=period, timezone=zone)
    rows = [asdict(s) for s in slots]
    if media != JSON:
        return table_response(media=media, name="contact-times", columns=CONTACT_COLUMNS, rows=rows)
    return ContactTimesTable.model_validate(
        {"store_id": store_id, "from": period.start, "to": period.end, "items": rows}
    )
