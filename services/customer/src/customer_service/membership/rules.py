"""A store's membership rules (DOMAIN.md §8): points per yuan, how long points last, and the
levels a 12-month spend reaches. A store that never saved its own runs on ``DEFAULT_RULES``."""

import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy import func
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from crm_libs.principal import Principal
from crm_libs.problems import ProblemError
from customer_service.membership.models import MembershipRules
from customer_service.membership.schemas import MembershipRulesIn, MembershipRulesPublic
from customer_service.stores import service as stores

# One point a yuan, points lasting two years, four levels by the last 12 months' spend.
DEFAULT_RULES = MembershipRulesIn.model_validate(
    {
        "points_per_yuan": "1",
        "points_expire_months": 24,
        "levels": [
            {
                "code": "member",
                "name": "普通会员",
                "min_spend_12m": "0.00",
                "discount_percent": "0",
                "benefits": ["积分", "会员活动"],
            },
            {
                "code": "silver",
                "name": "银卡会员",
                "min_spend_12m": "2000.00",
                "discount_percent": "5",
                "benefits": ["积分", "会员活动", "生日礼"],
            },
            {
                "code": "gold",
                "name": "金卡会员",
                "min_spend_12m": "5000.00",
                "discount_percent": "8",
                "benefits": ["积分", "会员活动", "生日礼", "免费健康检测"],
            },
            {
                "code": "diamond",
                "name": "钻石会员",
                "min_spend_12m": "10000.00",
                "discount_percent": "12",
                "benefits": ["积分", "会员活动", "生日礼", "免费健康检测", "专属顾问上门"],
            },
        ],
    }
)


@dataclass(frozen=True, slots=True)
class Rules:
    """What a sale, a refund and the daily job need of a store's rules."""

    points_per_yuan: Decimal
    points_expire_months: int
    # (code, min_spend_12m), lowest first.
    thresholds: tuple[tuple[str, Decimal], ...]

    @classmethod
    def of(cls, points_per_yuan: Any, expire_months: Any, levels: Any) -> "Rules":
        """From a ``membership_rules`` row's columns (levels as JSON text or a list), or the
        defaults when the store has none (all three NULL)."""
        if points_per_yuan is None:
            return DEFAULT
        if isinstance(levels, str):
            levels = orjson.loads(levels)
        return cls(
            Decimal(points_per_yuan),
            int(expire_months),
            tuple((lvl["code"], Decimal(lvl["min_spend_12m"])) for lvl in levels),
        )

    def earned(self, total: Decimal) -> int:
        """Points a sale of ``total`` earns: whole points, rounded down (0 for a 0 total)."""
        return max(0, math.floor(total * self.points_per_yuan))

    def level_for(self, spend_12m: Decimal) -> str | None:
        """The highest level the spend reaches; None below the lowest."""
        reached = None
        for code, minimum in self.thresholds:
            if spend_12m >= minimum:
                reached = code
        return reached


DEFAULT = Rules.of(
    DEFAULT_RULES.points_per_yuan,
    DEFAULT_RULES.points_expire_months,
    DEFAULT_RULES.model_dump(mode="json")["levels"],
)


def check(rules_in: MembershipRulesIn) -> None:
    """422 naming every level that breaks an ordering rule (the schema checks each value)."""
    errors = []
    seen: dict[str, int] = {}
    for index, level in enumerate(rules_in.levels):
        if level.code in seen:
            errors.append(
                {
                    "field": f"levels.{index}.code",
                    "message": f"{level.code!r} is already levels.{seen[level.code]}'s code",
                }
            )
        seen.setdefault(level.code, index)
        if index and level.min_spend_12m <= rules_in.levels[index - 1].min_spend_12m:
            errors.append(
                {
                    "field": f"levels.{index}.min_spend_12m",
                    "message": "must be above the level before it "
                    f"({rules_in.levels[index - 1].min_spend_12m:.2f}): levels go lowest first",
                }
            )
    if errors:
        raise ProblemError(
            "; ".join(f"{e['field']}: {e['message']}" for e in errors),
            status=422,
            title="Invalid field value",
            errors=errors,
        )


def _public(store_id: str, row: MembershipRules | None) -> MembershipRulesPublic:
    if row is None:
        return MembershipRulesPublic(
            store_id=store_id, configured=False, **DEFAULT_RULES.model_dump()
        )
    return MembershipRulesPublic.model_validate(
        {
            "store_id": store_id,
            "configured": True,
            "updated_at": row.updated_at,
            "points_per_yuan": row.points_per_yuan,
            "points_expire_months": row.points_expire_months,
            "levels": row.levels,
        }
    )


async def get(
    session: AsyncSession, *, principal: Principal, store_id: str
) -> MembershipRulesPublic:
    """The store's rules, or the defaults it runs on."""
    store = await stores.get(session, principal=principal, store_id=store_id)
    return _public(store.id, await session.get(MembershipRules, store.id))


async def put(
    session: AsyncSession, *, principal: Principal, store_id: str, rules_in: MembershipRulesIn
) -> MembershipRulesPublic:
    """Replace the store's rules. Earned points keep the expiry they were earned with; levels
    follow the new thresholds at each member's next purchase or refund, and the daily job's."""
    store = await stores.get(session, principal=principal, store_id=store_id)
    check(rules_in)
    values = {
        "store_id": store.id,
        "points_per_yuan": rules_in.points_per_yuan,
        "points_expire_months": rules_in.points_expire_months,
        "levels": rules_in.model_dump(mode="json")["levels"],
        "updated_by": principal.subject,
    }
    statement = insert(MembershipRules).values(values)
    statement = statement.on_conflict_do_update(
        index_elements=["store_id"],
        set_={
            **{k: statement.excluded[k] for k in values if k != "store_id"},
            "updated_at": func.now(),
        },
    )
    await session.execute(statement)
    row = await session.get(MembershipRules, store.id, populate_existing=True)
    return _public(store.id, row)
