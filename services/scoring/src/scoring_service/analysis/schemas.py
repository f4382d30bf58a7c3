"""The shapes of the analysis tables (API.md "Routes (second set)"), and their columns for CSV
and the workbook (crm_libs.tables)."""

from datetime import date
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from crm_libs.tables import Column


class _Period(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    store_id: str
    from_: date = Field(alias="from", description="First day, store-local")
    to: date = Field(description="Last day, store-local, included")


class ConsumptionGroup(BaseModel):
    key: str | None = Field(
        description="The month (YYYY-MM), tier, sku, category, staff id or "
        "district; null: none named"
    )
    customers: int
    purchases: int
    revenue: Decimal = Field(description="Net of refunds, two places")
    share: float = Field(description="Of the table's revenue, four places")


class ConsumptionTable(_Period):
    by: str
    items: list[ConsumptionGroup]


CONSUMPTION_COLUMNS = (
    Column("key", "分组"),
    Column("customers", "顾客数", "integer"),
    Column("purchases", "消费次数", "integer"),
    Column("revenue", "消费金额", "money"),
    Column("share", "占比", "rate"),
)


class YearChurnRow(BaseModel):
    year: int
    as_of: date = Field(description="The day the lifecycle is judged on: the year's last, or today")
    customers: int = Field(description="Had bought by then and were not lost a year before")
    lost: int
    lost_rate: float
    stopped: int
    stopped_rate: float


class ChurnTable(BaseModel):
    store_id: str
    items: list[YearChurnRow]


CHURN_COLUMNS = (
    Column("year", "年度", "integer"),
    Column("as_of", "截至"),
    Column("customers", "顾客数", "integer"),
    Column("lost", "流失", "integer"),
    Column("lost_rate", "流失率", "rate"),
    Column("stopped", "停服", "integer"),
    Column("stopped_rate", "停服率", "rate"),
)


class ContactSlot(BaseModel):
    weekday: int = Field(ge=1, le=7, description="ISO: 1 Monday … 7 Sunday, store-local")
    hour: int = Field(ge=0, le=23, description="Store-local")
    contacts: int
    answered: int
    answer_rate: float


class ContactTimesTable(_Period):
    items: list[ContactSlot]


CONTACT_COLUMNS = (
    Column("weekday", "星期", "integer"),
    Column("hour", "时段", "integer"),
    Column("contacts", "联系次数", "integer"),
    Column("answered", "接通次数", "integer"),
    Column("answer_rate", "接通率", "rate"),
)
