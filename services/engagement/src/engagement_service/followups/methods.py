"""How a task is carried out, and how a visit was: one enumeration for tasks and visits alike."""

from enum import StrEnum


class Method(StrEnum):
    PHONE = "phone"
    HOME = "home"  # a home visit
    IN_STORE = "in_store"  # the customer came to the store
    MESSAGE = "message"  # a care message (SMS, WeChat)
    EXPERT_PHONE = "expert_phone"  # the after-sales expert (售后医生) calls
