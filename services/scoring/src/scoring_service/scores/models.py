from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    Identity,
    Index,
    Integer,
    Numeric,
    SmallInteger,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlmodel import Field, SQLModel

from scoring_service.scores.tiers import PROSPECT

# The loyalty of a file with no purchase and no competitors' products in use (classify.py).
FLOATING = "floating"
# The value tiers' listing index holds the customers who bought (migration 0022): a listing of
# another tier names this predicate as written, which a parameter's value cannot prove.
TIER_INDEX_PREDICATE = f"value_tier <> '{PROSPECT}'"
# Likewise the loyalty listing index holds the customers who are not floating (migration 0023):
# every prospect is floating, as is every buyer without enough repeat purchases.
LOYALTY_INDEX_PREDICATE = f"loyalty <> '{FLOATING}'"


class CustomerScore(SQLModel, table=True):
    """Per-customer aggregates and the classification computed from them."""

    __tablename__ = "customer_score"
    __table_args__ = (
        # The value tiers rank spenders only (net_spend_365d > 0): a prospect is not in it.
        Index(
            "ix_customer_score_store_spend",
            "store_id",
            "net_spend_365d",
            postgresql_where=text("net_spend_365d > 0"),
        ),
        Index("ix_customer_score_store_customer", "store_id", "customer_id"),
        # Segment listings (scores/segments.py): one per filter, a page in customer order.
        # A prospect has no ladder, lifecycle or RFM: those hold only classified customers.
        # A listing of prospects, or of floating customers, reads the store's rows instead
        # (scores/segments.py).
        Index(
            "ix_customer_score_store_tier",
            "store_id",
            "value_tier",
            "customer_id",
            postgresql_where=text(TIER_INDEX_PREDICATE),
        ),
        Index(
            "ix_customer_score_store_lifecycle",
            "store_id",
            "lifecycle",
            "customer_id",
            postgresql_where=text("lifecycle IS NOT NULL"),
        ),
        Index(
            "ix_customer_score_store_ladder",
            "store_id",
            "ladder_level",
            "customer_id",
            postgresql_where=text("ladder_level IS NOT NULL"),
        ),
        Index(
            "ix_customer_score_store_loyalty",
            "store_id",
            "loyalty",
            "customer_id",
            postgresql_where=text(LOYALTY_INDEX_PREDICATE),
        ),
        Index(
            "ix_customer_score_store_rfm",
            "store_id",
            "rfm_segment",
            "customer_id",
            postgresql_where=text("rfm_segment IS NOT NULL"),
        ),
    )

    customer_id: str = Field(primary_key=True)
    store_id: str = Field(sa_column=Column(Text, nullable=False))
    timezone: str = Field(sa_column=Column(Text, nullable=False))
    purchase_count: int = Field(sa_column=Column(Integer, nullable=False))
    first_purchase_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True))
    )
    last_purchase_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True))
    )
    supply_runs_out_on: date | None = Field(default=None, sa_column=Column(Date))
    # The expected next purchase (the run-out, or a member event before it) and the run-out as
    # the newest score.changed carried them (scores/expected_dates.py).
    expected_purchase_on: date | None = Field(default=None, sa_column=Column(Date))
    announced_runs_out_on: date | None = Field(default=None, sa_column=Column(Date))
    net_spend_365d: Decimal = Field(
        sa_column=Column(Numeric(14, 2), nullable=False, server_default="0")
    )
    value_tier: str | None = Field(default=None, sa_column=Column(Text))
    # DOMAIN.md §3's other classifications. The floor is a manager's setting (API.md's
    # ladder-floor): the computed level never drops below it until it is cleared.
    ladder_level: str | None = Field(default=None, sa_column=Column(Text))
    ladder_score: int | None = Field(default=None, sa_column=Column(SmallInteger))
    ladder_floor: str | None = Field(default=None, sa_column=Column(Text))
    ladder_floor_reason: str | None = Field(default=None, sa_column=Column(Text))
    ladder_floor_by: str | None = Field(default=None, sa_column=Column(Text))
    loyalty: str | None = Field(default=None, sa_column=Column(Text))
    lifecycle: str | None = Field(default=None, sa_column=Column(Text))
    rfm_r: int | None = Field(default=None, sa_column=Column(SmallInteger))
    rfm_f: int | None = Field(default=None, sa_column=Column(SmallInteger))
    rfm_m: int | None = Field(default=None, sa_column=Column(SmallInteger))
    rfm_segment: str | None = Field(default=None, sa_column=Column(Text))
    # The store-local day the classification last changed (a row is written only then; the day
    # each store was last aged is store_ageing's).
    classified_on: date | None = Field(default=None, sa_column=Column(Date))
    version: int = Field(sa_column=Column(Integer, nullable=False, server_default="0"))
    computed_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))


class PurchaseFact(SQLModel, table=True):
    """The purchases this service has seen, enough to recompute windows and aggregates."""

    __tablename__ = "purchase_fact"
    __table_args__ = (
        Index("ix_purchase_fact_customer_at", "customer_id", "purchased_at"),
        # A store's purchases of a period, for the analysis (analysis/consumption.py).
        Index("ix_purchase_fact_store_day", "store_id", "purchased_on"),
    )

    purchase_id: str = Field(primary_key=True)
    store_id: str = Field(sa_column=Column(Text, nullable=False))
    customer_id: str = Field(sa_column=Column(Text, nullable=False))
    purchased_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    # The day in the store's time zone and that zone, as the event said: supply counts in days.
    purchased_on: date = Field(sa_column=Column(Date, nullable=False))
    timezone: str = Field(sa_column=Column(Text, nullable=False))
    total: Decimal = Field(sa_column=Column(Numeric(14, 2), nullable=False))
    supply_days: int = Field(sa_column=Column(Integer, nullable=False, server_default="0"))
    # Nothing left of the purchase after its refunds (scores/refund_facts.py): not counted as a
    # purchase. ``total`` and ``supply_days`` are what its refunds left.
    wholly_refunded: bool = Field(
        default=False, sa_column=Column(Boolean, nullable=False, server_default=text("false"))
    )
    # The purchase's lines, one position each (sku, category, boxes): what was bought, for the
    # next product (scores/next_purchase.py). Empty for facts stored before they were kept.
    line_skus: list[str] = Field(
        default_factory=list,
        sa_column=Column(ARRAY(Text), nullable=False, server_default=text("'{}'")),
    )
    line_categories: list[str | None] = Field(
        default_factory=list,
        sa_column=Column(ARRAY(Text), nullable=False, server_default=text("'{}'")),
    )
    line_quantities: list[int] = Field(
        default_factory=list,
        sa_column=Column(ARRAY(Integer), nullable=False, server_default=text("'{}'")),
    )
    created_at: datetime | None = Field(
        default=None,
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=text("now()")),
    )


class MergedCustomer(SQLModel, table=True):
    """A merged-away file and the survivor holding its purchases now (``scores/merges.py``)."""

    __tablename__ = "merged_customer"
    # A survivor merged on in turn: its own merged-away files follow it to the next survivor.
    __table_args__ = (Index("ix_merged_customer_survivor", "survivor_id"),)

    customer_id: str = Field(sa_column=Column(Text, primary_key=True))
    survivor_id: str = Field(sa_column=Column(Text, nullable=False))
    store_id: str = Field(sa_column=Column(Text, nullable=False))
    merged_at: datetime | None = Field(
        default=None,
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=text("now()")),
    )


class ModelFit(SQLModel, table=True):
    """One BG/NBD and Gamma-Gamma fit of a store (``store_id`` null: the pooled fit), kept."""

    __tablename__ = "model_fit"
    __table_args__ = (Index("ix_model_fit_store_fitted", "store_id", "fitted_at"),)

    id: str = Field(sa_column=Column(Text, primary_key=True))
    store_id: str | None = Field(default=None, sa_column=Column(Text))
    fitted_at: datetime | None = Field(
        default=None,
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=text("now()")),
    )
    calibration_end: date = Field(sa_column=Column(Date, nullable=False))
    time_unit: str = Field(sa_column=Column(Text, nullable=False))
    customers: int = Field(sa_column=Column(Integer, nullable=False))
    repeat_customers: int = Field(sa_column=Column(Integer, nullable=False))
    r: float = Field(sa_column=Column(Float, nullable=False))
    alpha: float = Field(sa_column=Column(Float, nullable=False))
    a: float = Field(sa_column=Column(Float, nullable=False))
    b: float = Field(sa_column=Column(Float, nullable=False))
    bgnbd_log_likelihood: float = Field(sa_column=Column(Float, nullable=False))
    p: float | None = Field(default=None, sa_column=Column(Float))
    q: float | None = Field(default=None, sa_column=Column(Float))
    v: float | None = Field(default=None, sa_column=Column(Float))
    gamma_gamma_log_likelihood: float | None = Field(default=None, sa_column=Column(Float))


class CustomerSignal(SQLModel, table=True):
    """A member event attended or a guest brought, keyed by the event that reported it."""

    __tablename__ = "customer_signal"
    __table_args__ = (Index("ix_customer_signal_customer", "customer_id", "kind", "occurred_at"),)

    kind: str = Field(sa_column=Column(Text, primary_key=True))
    # The member event's id: one signal of a kind per customer and event (scores/signals.py).
    source_id: str = Field(sa_column=Column(Text, primary_key=True))
    customer_id: str = Field(sa_column=Column(Text, primary_key=True))
    store_id: str = Field(sa_column=Column(Text, nullable=False))
    occurred_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class CustomerLink(SQLModel, table=True):
    """What the ladder and loyalty read of the customer file: referrer, competitors in use."""

    __tablename__ = "customer_link"
    __table_args__ = (Index("ix_customer_link_referrer", "referrer_id"),)

    customer_id: str = Field(sa_column=Column(Text, primary_key=True))
    store_id: str = Field(sa_column=Column(Text, nullable=False))
    referrer_id: str | None = Field(default=None, sa_column=Column(Text))
    uses_competitor: bool = Field(
        default=False, sa_column=Column(Boolean, nullable=False, server_default=text("false"))
    )
    # The file's version the link was taken from: an older event changes nothing.
    version: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))


class ScoreHistory(SQLModel, table=True):
    """One change of a customer's tier, ladder or lifecycle, with its cause."""

    __tablename__ = "score_history"
    __table_args__ = (Index("ix_score_history_customer", "customer_id", "id"),)

    id: int | None = Field(default=None, sa_column=Column(BigInteger, Identity(), primary_key=True))
    customer_id: str = Field(sa_column=Column(Text, nullable=False))
    store_id: str = Field(sa_column=Column(Text, nullable=False))
    at: datetime | None = Field(
        default=None,
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=text("now()")),
    )
    field: str = Field(sa_column=Column(Text, nullable=False))
    previous: str | None = Field(default=None, sa_column=Column(Text))
    value: str | None = Field(default=None, sa_column=Column(Text))
    cause: str = Field(sa_column=Column(Text, nullable=False))


class RfmBound(SQLModel, table=True):
    """A store's RFM quintile boundaries (four cut points each), as of ``computed_at``.

    ``new_buyers``: customers scored against them since who were not among the ``buyers``
    they were computed from; the store's boundaries are computed again when they have grown
    by a quarter (scores/rfm.py)."""

    __tablename__ = "rfm_bound"

    store_id: str = Field(sa_column=Column(Text, primary_key=True))
    computed_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    buyers: int = Field(sa_column=Column(Integer, nullable=False))
    new_buyers: int = Field(
        default=0, sa_column=Column(Integer, nullable=False, server_default="0")
    )
    recency: list[datetime] = Field(
        sa_column=Column(ARRAY(DateTime(timezone=True)), nullable=False)
    )
    frequency: list[int] = Field(sa_column=Column(ARRAY(Integer), nullable=False))
    monetary: list[Decimal] = Field(sa_column=Column(ARRAY(Numeric(14, 2)), nullable=False))


class StoreAgeing(SQLModel, table=True):
    """The store-local day the daily ageing last aged a store (``scores/scheduled.py``)."""

    __tablename__ = "store_ageing"

    store_id: str = Field(sa_column=Column(Text, primary_key=True))
    aged_on: date = Field(sa_column=Column(Date, nullable=False))
    aged_at: datetime | None = Field(
        default=None,
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=text("now()")),
    )


class ProductTransition(SQLModel, table=True):
    """A store's "after ``after_sku``, ``customers`` customers bought ``sku`` next" (``after_sku``
    '' for a first purchase), recomputed from the facts (``scores/next_purchase.py``)."""

    __tablename__ = "product_transition"

    store_id: str = Field(sa_column=Column(Text, primary_key=True))
    after_sku: str = Field(sa_column=Column(Text, primary_key=True))
    sku: str = Field(sa_column=Column(Text, primary_key=True))
    category: str | None = Field(default=None, sa_column=Column(Text))
    customers: int = Field(sa_column=Column(Integer, nullable=False))
    computed_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class MemberEvent(SQLModel, table=True):
    """A store's member event as ``crm.engagement.v1`` announced it
    (``scores/member_events.py``)."""

    __tablename__ = "member_event"
    __table_args__ = (Index("ix_member_event_store_starts", "store_id", "starts_at"),)

    event_id: str = Field(sa_column=Column(Text, primary_key=True))
    store_id: str = Field(sa_column=Column(Text, nullable=False))
    # Null while only a cancellation has been seen.
    starts_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    title: str | None = Field(default=None, sa_column=Column(Text))
    # The newest ``event.scheduled`` applied (its envelope's time): an older one changes nothing.
    scheduled_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    # A cancellation is final: a schedule delivered again after it does not bring the event back.
    cancelled_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))


class PurchaseRefundFact(SQLModel, table=True):
    """A ``purchase.refunded`` seen, applied to its purchase's fact once that is stored too."""

    __tablename__ = "purchase_refund_fact"
    __table_args__ = (
        Index(
            "ix_purchase_refund_fact_pending",
            "purchase_id",
            postgresql_where=text("NOT applied"),
        ),
        Index("ix_purchase_refund_fact_purchase", "purchase_id"),
    )

    refund_id: str = Field(sa_column=Column(Text, primary_key=True))
    purchase_id: str = Field(sa_column=Column(Text, nullable=False))
    store_id: str = Field(sa_column=Column(Text, nullable=False))
    customer_id: str = Field(sa_column=Column(Text, nullable=False))
    refunded_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    total: Decimal = Field(sa_column=Column(Numeric(14, 2), nullable=False))
    supply_days: int = Field(sa_column=Column(Integer, nullable=False))
    applied: bool = Field(
        default=False, sa_column=Column(Boolean, nullable=False, server_default=text("false"))
    )
    created_at: datetime | None = Field(
        default=None,
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=text("now()")),
    )


class StoreTierRules(SQLModel, table=True):
    """A store's own tier rules (``scores/tier_rules.py``); no row: DOMAIN.md's defaults."""

    __tablename__ = "store_tier_rules"

    store_id: str = Field(sa_column=Column(Text, primary_key=True))
    vip_share: Decimal = Field(sa_column=Column(Numeric(7, 6), nullable=False))
    major_share: Decimal = Field(sa_column=Column(Numeric(7, 6), nullable=False))
    medium_share: Decimal = Field(sa_column=Column(Numeric(7, 6), nullable=False))
    window_days: int = Field(sa_column=Column(Integer, nullable=False))
    lost_after_days: int = Field(sa_column=Column(Integer, nullable=False))
    stopped_after_days: int = Field(sa_column=Column(Integer, nullable=False))
    updated_by: str = Field(sa_column=Column(Text, nullable=False))
    updated_at: datetime | None = Field(
        default=None,
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=text("now()")),
    )
