"""``GET/PUT /stores/{store_id}/tier-rules``: a store's pyramid shares, window and lifecycle
thresholds (scores/tier_rules.py)."""

from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from crm_libs import audit_header
from crm_libs.audit_header import AUDIT_HEADER, AuditEntry
from crm_libs.problems import problem_responses
from scoring_service.deps import PrincipalDep, ReadSessionDep, SessionDep, SettingsDep
from scoring_service.scores import tier_rules
from scoring_service.scores.tier_rules import DEFAULT_RULES, TierRules

router = APIRouter(prefix="/stores/{store_id}/tier-rules", tags=["scores"])

# Each share a bound strictly within (0, 1); they must also rise (tier_rules.checked).
Share = Annotated[Decimal, Field(gt=0, lt=1, max_digits=7, decimal_places=6)]
Days = Annotated[int, Field(gt=0, le=36_500)]


class TierRulesIn(BaseModel):
    """The whole rule set; a field left out takes DOMAIN.md's default. Unknown fields: 422."""

    model_config = ConfigDict(extra="forbid")

    vip_share: Share = DEFAULT_RULES.vip_share
    major_share: Share = DEFAULT_RULES.major_share
    medium_share: Share = DEFAULT_RULES.medium_share
    window_days: Days = DEFAULT_RULES.window_days
    lost_after_days: Days = DEFAULT_RULES.lost_after_days
    stopped_after_days: Days = DEFAULT_RULES.stopped_after_days


class TierRulesPublic(BaseModel):
    store_id: str
    vip_share: Decimal
    major_share: Decimal
    medium_share: Decimal
    window_days: int
    lost_after_days: int
    stopped_after_days: int


_PLACES = Decimal("0.000001")  # as stored (numeric(7, 6)): the same text from GET and PUT


def _public(store_id: str, rules: TierRules) -> TierRulesPublic:
    return TierRulesPublic(
        store_id=store_id,
        vip_share=rules.vip_share.quantize(_PLACES),
        major_share=rules.major_share.quantize(_PLACES),
        medium_share=rules.medium_share.quantize(_PLACES),
        window_days=rules.window_days,
        lost_after_days=rules.lost_after_days,
        stopped_after_days=rules.stopped_after_days,
    )


@router.get(
    "",
    response_model=TierRulesPublic,
    summary="The store's tier rules (DOMAIN.md's defaults where it set none)",
    responses=problem_responses(401, 404),
)
async def get_tier_rules(
    store_id: str, session: ReadSessionDep, principal: PrincipalDep
) -> TierRulesPublic:
    rules = await tier_rules.get_rules(session, principal=principal, store_id=store_id)
    return _public(store_id, rules)


@router.put(
    "",
    response_model=TierRulesPublic,
    summary="Set the store's tier rules; the store is then recomputed with them",
    responses=problem_responses(401, 403, 404, 422),
)
async def put_tier_rules(
    store_id: str,
    body: TierRulesIn,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    request: Request,
    response: Response,
    background: BackgroundTasks,
) -> TierRulesPublic:
    rules = await tier_rules.put_rules(
        session, principal=principal, store_id=store_id, rules=TierRules(**body.model_dump())
    )
    entry = AuditEntry(
        action="set_tier_rules",
        resource=f"store/{store_id}/tier-rules",
        fields=sorted(TierRulesIn.model_fields),
    )
    response.headers[AUDIT_HEADER] = audit_header.add(response.headers.get(AUDIT_HEADER), entry)
    # After the answer (the session commits before it is sent): see tier_rules.py.
    background.add_task(
        tier_rules.recompute_after_change,
        request.app.state.sessionmaker,
        store_id=store_id,
        as_of=settings.as_of,
    )
    return _public(store_id, rules)
