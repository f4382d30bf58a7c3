"""``python -m scoring_service.recompute_cli STORE_ID [STORE_ID ...]``: recompute stores from
their stored facts, as ``POST /scores/recompute`` does, from a shell beside the service (a
store whose every score changes can take longer than the gateway waits; deploy/README.md).

Uses the service's settings (``CRM_DATABASE_URL``, ``CRM_AS_OF``); the running service's relay
publishes the changes it stages. Exits 1 if a store is unknown to scoring.
"""

import asyncio
import sys

from crm_libs.db import make_engine, make_sessionmaker
from crm_libs.problems import NotFound
from scoring_service.config import Settings
from scoring_service.scores.recompute import recompute_store


async def recompute_stores(store_ids: list[str]) -> int:
    settings = Settings()
    engine = make_engine(settings.database_url, pool_size=1)
    failed = 0
    try:
        for store_id in store_ids:
            try:
                async with make_sessionmaker(engine)() as session, session.begin():
                    done = await recompute_store(session, store_id=store_id, as_of=settings.as_of)
            except NotFound as exc:
                print(f"{store_id}: {exc.detail}", file=sys.stderr)
                failed += 1
                continue
            print(
                f"{store_id}: customers {done.customers}, corrected {done.corrected}, "
                f"changed {done.changed}"
            )
    finally:
        await engine.dispose()
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    sys.exit(asyncio.run(recompute_stores(sys.argv[1:])))
