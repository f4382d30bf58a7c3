from fastapi import APIRouter

from crm_libs.problems import problem_responses
from scoring_service.deps import PrincipalDep, ReadSessionDep, SettingsDep
from scoring_service.scores import service
from scoring_service.scores.predictions import predictions_public
from scoring_service.scores.schemas import ScorePublic, ScoreRfm, ScoreStats

router = APIRouter(tags=["scores"])


@router.get(
    "/customers/{customer_id}/score",
    response_model=ScorePublic,
    summary="A customer's classification and statistics",
    responses=problem_responses(401, 404),
)
async def get_customer_score(
    customer_id: str, session: ReadSessionDep, principal: PrincipalDep, settings: SettingsDep
) -> ScorePublic:
    score = await service.get_score(session, principal=principal, customer_id=customer_id)
    return ScorePublic(
        customer_id=score.customer_id,
        store_id=score.store_id,
        value_tier=score.value_tier,
        ladder_level=score.ladder_level,
        ladder_score=score.ladder_score,
        loyalty=score.loyalty,
        lifecycle=score.lifecycle,
        rfm=ScoreRfm(r=score.rfm_r, f=score.rfm_f, m=score.rfm_m, segment=score.rfm_segment),
        stats=ScoreStats(
            purchase_count=score.purchase_count,
            net_spend_365d=score.net_spend_365d,
            first_purchase_at=score.first_purchase_at,
            last_purchase_at=score.last_purchase_at,
        ),
        supply_runs_out_on=score.supply_runs_out_on,
        predictions=await predictions_public(session, score=score, settings=settings),
        computed_at=score.computed_at,
        version=score.version,
    )
