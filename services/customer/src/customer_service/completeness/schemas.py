from pydantic import BaseModel, Field

from customer_service.completeness.weights import Stage


class MissingField(BaseModel):
    field: str = Field(description="The API's name: deep.x and health.x name a key of those")
    stage: Stage = Field(description="When etiquette allows asking: registration first")
    priority: int = Field(description="Place within the stage, 1 asked first")


class Completeness(BaseModel):
    score: int = Field(ge=0, le=100, description="Share of the weighed fields the file holds")
    missing: list[MissingField]
