from datetime import date, datetime

from sqlalchemy import (
    ARRAY,
    Boolean,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    PrimaryKeyConstraint,
    Text,
    text,
)
from sqlmodel import Field, SQLModel

from crm_libs.ids import new_id


class ProductBought(SQLModel, table=True):
    """Which products each customer has bought: a first purchase starts a plan."""

    __tablename__ = "product_bought"
    __table_args__ = (PrimaryKeyConstraint("customer_id", "sku"),)

    customer_id: str = Field(sa_column=Column(Text, nullable=False))
    sku: str = Field(sa_column=Column(Text, nullable=False))
    store_id: str = Field(sa_column=Column(Text, nullable=False))
    first_purchase_id: str = Field(sa_column=Column(Text, nullable=False))


class FollowUpPlan(SQLModel, table=True):
    """The five phases of one product's first purchase: ``open``, then ``completed`` once the
    last phase is done, or ``closed`` with a reason (the product was refunded)."""

    __tablename__ = "follow_up_plan"
    __table_args__ = (
        Index("ix_follow_up_plan_store_customer", "store_id", "customer_id"),
        # A refund names its purchase.
        Index("ix_follow_up_plan_purchase", "purchase_id"),
    )

    id: str = Field(default_factory=new_id, primary_key=True)
    store_id: str = Field(sa_column=Column(Text, nullable=False))
    customer_id: str = Field(sa_column=Column(Text, nullable=False))
    sku: str = Field(sa_column=Column(Text, nullable=False))
    purchase_id: str = Field(sa_column=Column(Text, nullable=False))
    started_on: date = Field(sa_column=Column(Date, nullable=False))
    status: str = Field(
        default="open", sa_column=Column(Text, nullable=False, server_default="open")
    )
    closed_reason: str | None = Field(default=None, sa_column=Column(Text))
    # The store-local day it was completed or closed.
    ended_on: date | None = Field(default=None, sa_column=Column(Date))
    created_at: datetime | None = Field(
        default=None,
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=text("now()")),
    )


class Task(SQLModel, table=True):
    """A follow-up or care task on a staff member's work list."""

    __table_args__ = (
        Index("ix_task_store_assignee_due", "store_id", "assignee_staff_id", "due_on"),
        # The day's work list (worklist/service.py): a staff member's open tasks up to today.
        Index(
            "ix_task_open_store_assignee_due",
            "store_id",
            "assignee_staff_id",
            "due_on",
            postgresql_where=text("status = 'open'"),
        ),
        Index("ix_task_store_customer", "store_id", "customer_id"),
        Index("ix_task_plan", "plan_id", postgresql_where=text("plan_id IS NOT NULL")),
        # One open refill reminder and one open recovery task per customer (care/refill.py,
        # care/recovery.py).
        Index(
            "ux_task_open_refill",
            "customer_id",
            unique=True,
            postgresql_where=text("kind = 'refill' AND status = 'open'"),
        ),
        Index(
            "ux_task_open_recovery",
            "customer_id",
            unique=True,
            postgresql_where=text("kind = 'recovery' AND status = 'open'"),
        ),
    )

    id: str = Field(default_factory=new_id, primary_key=True)
    store_id: str = Field(sa_column=Column(Text, nullable=False))
    customer_id: str = Field(sa_column=Column(Text, nullable=False))
    plan_id: str | None = Field(default=None, sa_column=Column(Text))
    kind: str = Field(sa_column=Column(Text, nullable=False))
    phase: int | None = Field(default=None, sa_column=Column(Integer))
    sku: str | None = Field(default=None, sa_column=Column(Text))
    due_on: date = Field(sa_column=Column(Date, nullable=False))
    # One of followups.methods.Method; methods_allowed where the task offers a choice.
    method: str = Field(sa_column=Column(Text, nullable=False))
    methods_allowed: list[str] | None = Field(default=None, sa_column=Column(ARRAY(Text)))
    purpose: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(sa_column=Column(Text, nullable=False, server_default="open"))
    # Why a task was closed without being done: its file was archived, erased or merged, or its
    # product refunded.
    closed_reason: str | None = Field(default=None, sa_column=Column(Text))
    assignee_staff_id: str | None = Field(default=None, sa_column=Column(Text))
    # When it was done, the store-local day (on time when not after due_on), by whom, and how
    # (the method of the visit that did it; None when completed without a visit).
    done_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    done_on: date | None = Field(default=None, sa_column=Column(Date))
    done_by: str | None = Field(default=None, sa_column=Column(Text))
    done_method: str | None = Field(default=None, sa_column=Column(Text))
    # The due date before the first reschedule, and why the last one moved it.
    rescheduled_from: date | None = Field(default=None, sa_column=Column(Date))
    reschedule_reason: str | None = Field(default=None, sa_column=Column(Text))
    # A special_day task's occasion (care.special_days.Occasion) and the solar day it falls on.
    occasion: str | None = Field(default=None, sa_column=Column(Text))
    occasion_on: date | None = Field(default=None, sa_column=Column(Date))
    # A recovery task's reason (care.stop_reasons.StopReason), and whether it needs the store's
    # manager (engagement knows no manager: the owner carries it to them).
    recovery_reason: str | None = Field(default=None, sa_column=Column(Text))
    with_manager: bool | None = Field(default=None, sa_column=Column(Boolean))
    # A recovery task's place in its reason's steps (care.recovery.RECOVERY), 1 the first.
    recovery_step: int | None = Field(default=None, sa_column=Column(Integer))
    created_at: datetime | None = Field(
        default=None,
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=text("now()")),
    )
