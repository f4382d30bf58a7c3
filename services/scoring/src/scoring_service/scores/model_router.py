from fastapi import APIRouter

from crm_libs.problems import problem_responses
from scoring_service.deps import PrincipalDep, SessionDep, SettingsDep
from scoring_service.scores.fit_checks import fit_on_request
from scoring_service.scores.fit_schemas import ModelFitPublic, ModelFitRequest

router = APIRouter(tags=["models"])


@router.post(
    "/stores/{store_id}/models/fit",
    response_model=ModelFitPublic,
    response_model_exclude_none=True,
    status_code=200,
    summary="Fit BG/NBD and Gamma-Gamma to a store's purchases, with a holdout check",
    responses=problem_responses(401, 403, 404, 422),
)
async def fit_store_models(
    store_id: str,
    body: ModelFitRequest,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
) -> ModelFitPublic:
    return await fit_on_request(
        session, principal=principal, store_id=store_id, request=body, settings=settings
    )
