"""A birthday campaign to 100,000 customers through the console provider: messages rendered and
queued per second by the send job, against a bare ``COPY`` of the same rows into the same
table, same run.

    uv run python bench/campaigns.py [--count 100000] [--profile FILE]

Starts PostgreSQL, the broker and the migrations (``LocalStack.start_infrastructure()``) in a
throwaway directory and generates ``--count`` customers of one store straight into both
databases with ``COPY``: in the customer service's (names, genders and phones from
``bench/people.py``, seed 11, phones encrypted with the development keys) and in engagement's
read copy (active, consenting, a birthday celebrated on the campaign's day: 80 % solar, 20 %
lunar, born 1940-1985). Starts the customer service and engagement (the SMS provider is the
console one) and, as the store's manager (a signed principal, as the gateway forwards it):

1. saves a birthday template ``{form_of_address}，{store}祝您生日快乐，身体安康！`` and creates a
   birthday campaign for the day, ``send_at`` tomorrow 10:00 in the store's zone, so the worker
   sends none of them while the job runs (the measure is rendering and queueing, not sending);
2. ``POST /campaigns/{id}/send`` and polls ``GET /campaigns/{id}`` every 0.2 s until ``sent``:
   messages/s = messages queued / seconds from the send to ``sent``;
3. the baseline: the same rows (read back, new ids, another campaign id so the counting trigger
   fires the same way) with one ``COPY`` into ``sms_message``, in one transaction: rows/s.

Prints both, the ratio (campaign / COPY), the CPU seconds of engagement, the customer service
and PostgreSQL over the send (from ``/proc``), and checks that every customer got exactly one
message, rendered with their form of address and the store's name. Exits 1 otherwise. With
``--profile FILE`` engagement is sampled with py-spy (``uv tool install py-spy``) during the send.

Names reach a campaign from the customer service, 500 per request as the sender (engagement
keeps no names): one request per chunk of 1,000 files scanned is two, not a request per customer.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from zoneinfo import ZoneInfo

import aiohttp
import asyncpg
import orjson
from people import people
from proc_cpu import postmaster_pid, tree_cpu_seconds
from support import find_py_spy, log, temp_stack

from crm_devstack.stack import LocalStack
from crm_libs.db import asyncpg_dsn
from crm_libs.field_crypto import FieldCipher
from crm_libs.ids import new_id
from crm_libs.principal import PRINCIPAL_HEADER, Principal, Role, sign_principal
from crm_libs.settings import DEV_PRINCIPAL_SECRET
from customer_service.config import DEV_FIELD_KEY, DEV_PHONE_HASH_KEY
from customer_service.customers.phones import phone_lookup_hash
from engagement_service.campaigns.job import COLUMNS
from engagement_service.care.special_days import lunar_birth_of, lunar_birthday_in_year
from engagement_service.messages.rendering import form_of_address

SEED = 11
ZONE = "Asia/Shanghai"
STACK_ENV = {"CRM_LOG_LEVEL": "WARNING", "CRM_RATE_LIMIT": "1000000/minute"}
BODY = "{form_of_address}，{store}祝您生日快乐，身体安康！"
STORE_NAME = "康宁养生馆"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000, help="customers with a birthday")
    parser.add_argument("--profile", help="write engagement's py-spy flame graph here")
    return parser.parse_args()


def born_on(day: date, lunar: bool, year: int) -> date:
    """A solar date of birth whose birthday (solar, or lunar) is ``day`` this year."""
    if not lunar:
        return day.replace(year=year) if (day.month, day.day) != (2, 29) else date(year, 2, 28)
    _, month, lunar_day = lunar_birth_of(day)
    for y in range(year, year + 30):
        first = lunar_birthday_in_year(month, 1, y)
        on = lunar_birthday_in_year(month, lunar_day, y)
        if (on - first).days == lunar_day - 1:
            return on
    raise AssertionError("no year with that lunar day")


async def load(stack: LocalStack, count: int, day: date) -> tuple[str, list[str]]:
    """The store and its customers, in both databases; the customer ids."""
    cipher = FieldCipher([DEV_FIELD_KEY])
    store_id = new_id()
    customer_rows, file_rows, ids = [], [], []
    started = time.perf_counter()
    for person in people(count, seed=SEED, stores=1):
        customer_id = new_id()
        ids.append(customer_id)
        phones = [{"number": person.phone, "kind": person.phone_kind, "primary": True}]
        customer_rows.append(
            (
                customer_id,
                store_id,
                person.name,
                person.name_keys,
                person.gender,
                cipher.encrypt(orjson.dumps(phones).decode()),
                [phone_lookup_hash(person.phone, key=DEV_PHONE_HASH_KEY)],
                [person.phone_tail],
            )
        )
        lunar = person.seq % 5 == 0
        file_rows.append(
            (
                customer_id,
                store_id,
                "active",
                ZONE,
                born_on(day, lunar, 1940 + person.seq % 46),
                "lunar" if lunar else "solar",
                True,
                datetime.now(UTC),
                1,
            )
        )
    log(f"  generated {count:,} customers in {time.perf_counter() - started:.0f} s")
    customer_db = await asyncpg.connect(asyncpg_dsn(stack.database_url("customer")))
    try:
        await customer_db.execute(
            "INSERT INTO store (id, code, name, timezone) VALUES ($1, 'BENCHC', $2, $3)",
            store_id,
            STORE_NAME,
            ZONE,
        )
        await customer_db.copy_records_to_table(
            "customer",
            records=customer_rows,
            columns=(
                "id",
                "store_id",
                "name",
                "name_keys",
                "gender",
                "phones_encrypted",
                "phone_hashes",
                "phone_tails",
            ),
        )
        await customer_db.execute("VACUUM ANALYZE customer")
    finally:
        await customer_db.close()
    engagement_db = await asyncpg.connect(asyncpg_dsn(stack.database_url("engagement")))
    try:
        await engagement_db.copy_records_to_table(
            "customer_file",
            records=file_rows,
            columns=(
                "customer_id",
                "store_id",
                "status",
                "timezone",
                "birthday",
                "birthday_calendar",
                "sms_consent_granted",
                "sms_consent_at",
                "version",
            ),
        )
        await engagement_db.execute("VACUUM ANALYZE customer_file")
    finally:
        await engagement_db.close()
    return store_id, ids


async def run_campaign(
    stack: LocalStack, store_id: str, day: date, profile: str | None
) -> tuple[str, float, dict[str, float]]:
    manager = Principal(subject="bench-manager", role=Role.STORE_MANAGER, store_id=store_id)
    headers = {
        PRINCIPAL_HEADER: sign_principal(manager, secret=DEV_PRINCIPAL_SECRET, ttl_seconds=3600)
    }
    base = stack.url("engagement")
    send_at = datetime.combine(day + timedelta(days=1), dtime(10, 0), ZoneInfo(ZONE))
    async with aiohttp.ClientSession(base_url=base, headers=headers) as http:
        async with http.post(
            "/templates",
            json={"store_id": store_id, "category": "birthday", "name": "生日", "body": BODY},
        ) as response:
            assert response.status == 201, await response.text()
            template_id = (await response.json())["id"]
        async with http.post(
            "/campaigns",
            json={
                "kind": "birthday",
                "template_id": template_id,
                "date_from": day.isoformat(),
                "send_at": send_at.isoformat(),
            },
        ) as response:
            assert response.status == 201, await response.text()
            campaign_id = (await response.json())["id"]
        running = stack.pids()
        pids = {
            "engagement": running.get("engagement"),
            "customer": running.get("customer"),
            "postgres": postmaster_pid(stack),
        }
        before = {name: _cpu(pid) for name, pid in pids.items()}
        spy = _spy(pids["engagement"], profile)
        started = time.perf_counter()
        async with http.post(f"/campaigns/{campaign_id}/send") as response:
            assert response.status == 202, await response.text()
        last = -1
        while True:
            await asyncio.sleep(0.2)
            async with http.get(f"/campaigns/{campaign_id}") as response:
                found = await response.json()
            if found["status"] != "sending":
                break
            if found["processed"] // 20_000 != last // 20_000:
                log(f"  {found['processed']:,} files, {time.perf_counter() - started:.1f} s")
            last = found["processed"]
        seconds = time.perf_counter() - started
        if spy is not None:
            spy.send_signal(2)
            spy.wait(timeout=60)
        cpu = {name: _cpu(pid) - before[name] for name, pid in pids.items()}
        assert found["status"] == "sent", found
        log(f"  campaign: {found['counts']}, excluded {found['excluded']}")
        return campaign_id, seconds, cpu


def _cpu(pid: int | None) -> float:
    # A service and its children (uvicorn's), PostgreSQL's postmaster and backends.
    return tree_cpu_seconds(pid) if pid else 0.0


def _spy(pid: int | None, out: str | None) -> subprocess.Popen[bytes] | None:
    spy = find_py_spy()
    if out is None or pid is None:
        return None
    if spy is None:
        log("  py-spy not found: uv tool install py-spy")
        return None
    return subprocess.Popen([spy, "record", "-p", str(pid), "-o", out, "--nonblocking"])


async def _names(stack: LocalStack, ids: list[str]) -> list[tuple[str, tuple[str, str]]]:
    conn = await asyncpg.connect(asyncpg_dsn(stack.database_url("customer")))
    try:
        rows = await conn.fetch("SELECT id, name, gender FROM customer WHERE id = ANY($1)", ids)
        return [(r["id"], (r["name"], r["gender"])) for r in rows]
    finally:
        await conn.close()


async def baseline_and_check(
    stack: LocalStack, campaign_id: str, ids: list[str]
) -> tuple[int, float, bool]:
    conn = await asyncpg.connect(asyncpg_dsn(stack.database_url("engagement")))
    try:
        rows = await conn.fetch(
            f"SELECT {', '.join(COLUMNS)} FROM sms_message WHERE campaign_id = $1",  # noqa: S608
            campaign_id,
        )
        names = dict(await _names(stack, ids))
        per_customer: dict[str, int] = {}
        wrong = 0
        for row in rows:
            per_customer[row["customer_id"]] = per_customer.get(row["customer_id"], 0) + 1
            name, gender = names[row["customer_id"]]
            address = form_of_address(name, gender)
            if row["body"] != BODY.format(form_of_address=address, store=STORE_NAME):
                wrong += 1
        ok = not wrong and len(per_customer) == len(ids) and set(per_customer.values()) == {1}
        if not ok:
            log(f"  CHECK FAILED: {len(per_customer):,} of {len(ids):,} customers, {wrong} wrong")
        other = new_id()
        copied = [
            (new_id(), r["store_id"], r["customer_id"], r["template_id"], other, *tuple(r)[5:])
            for r in rows
        ]
        started = time.perf_counter()
        async with conn.transaction():
            await conn.copy_records_to_table("sms_message", records=copied, columns=COLUMNS)
        seconds = time.perf_counter() - started
        return len(rows), seconds, ok
    finally:
        await conn.close()


def main() -> int:
    args = parse_args()
    day = datetime.now(ZoneInfo(ZONE)).date()
    print(
        f"campaign benchmark: a birthday campaign to {args.count:,} customers on {day}, "
        f"{os.cpu_count()} cores",
        flush=True,
    )
    with temp_stack("crm-bench-campaigns-", extra_env=STACK_ENV) as stack:
        log(f"starting PostgreSQL, the broker and the migrations in {stack.data_dir} …")
        stack.start_infrastructure()
        log(f"loading {args.count:,} customers …")
        store_id, ids = asyncio.run(load(stack, args.count, day))
        log("starting the customer service and engagement …")
        for name in ("customer", "engagement"):
            stack.start_service(name)
        for name in ("customer", "engagement"):
            stack.wait_healthy(name)
        log("sending the campaign …")
        campaign_id, seconds, cpu = asyncio.run(run_campaign(stack, store_id, day, args.profile))
        queued, copy_seconds, ok = asyncio.run(baseline_and_check(stack, campaign_id, ids))
    rate, copy_rate = queued / seconds, queued / copy_seconds
    print(f"campaign: {queued:,} messages rendered and queued in {seconds:.1f} s: {rate:,.0f}/s")
    print(f"bare COPY of the same rows: {copy_seconds:.2f} s: {copy_rate:,.0f} rows/s")
    print(f"ratio campaign / COPY: {rate / copy_rate:.3f}")
    print(
        "CPU seconds over the send: "
        + ", ".join(f"{name} {value:.1f}" for name, value in cpu.items())
        + f" (wall {seconds:.1f})"
    )
    print("check: every customer one message, rendered: " + ("ok" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
