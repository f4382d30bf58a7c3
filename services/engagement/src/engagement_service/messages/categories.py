"""The template categories, each one's carrier class, the placeholders a template may use and
the forbidden words of each category (DOMAIN.md §5): one place for each, as data.

A brand replaces a category's words with ``Settings.sms_forbidden_words`` (``{category: [..]}``);
a category it does not name keeps these defaults.
"""

from enum import StrEnum
from typing import Literal

CarrierClass = Literal["notification", "promotional"]


class Category(StrEnum):
    HOLIDAY = "holiday"
    BIRTHDAY = "birthday"
    SEASON = "season"
    MISS_YOU = "miss_you"
    CARE = "care"
    TRANSACTIONAL = "transactional"
    PROMOTIONAL = "promotional"


# As Chinese carriers class them: everything but an advert is a notification (通知类).
CARRIER_CLASS: dict[Category, CarrierClass] = {
    Category.HOLIDAY: "notification",
    Category.BIRTHDAY: "notification",
    Category.SEASON: "notification",
    Category.MISS_YOU: "notification",
    Category.CARE: "notification",
    Category.TRANSACTIONAL: "notification",
    Category.PROMOTIONAL: "promotional",
}

# Placeholders a template may hold, written {name}: the customer's name and form of address
# (王女士), the staff member whose voice it is, and the store.
PLACEHOLDERS = frozenset({"customer_name", "form_of_address", "staff_name", "store"})

# A friend's words, never a seller's: no promotion in any notification (the carriers refuse
# adverts sent as notifications, and a care message that sells stops being care).
_SELLING = ("促销", "优惠", "折扣", "特价", "活动", "满减", "秒杀", "限时", "打折", "抢购", "包邮")
# Season messages must not mention new products; holiday ones no store activity (活动 above).
_NEW_PRODUCTS = ("新品", "上市", "新款", "首发")
# No message, an advert least of all, promotes medical treatment (the advertising law).
_MEDICAL = ("治疗", "治愈", "根治", "疗效", "药到病除", "医治", "处方")

DEFAULT_FORBIDDEN_WORDS: dict[Category, tuple[str, ...]] = {
    Category.HOLIDAY: _SELLING + _NEW_PRODUCTS + _MEDICAL,
    Category.BIRTHDAY: _SELLING + _NEW_PRODUCTS + _MEDICAL,
    Category.SEASON: _SELLING + _NEW_PRODUCTS + _MEDICAL,
    Category.MISS_YOU: _SELLING + _NEW_PRODUCTS + _MEDICAL,
    Category.CARE: _SELLING + _NEW_PRODUCTS + _MEDICAL,
    Category.TRANSACTIONAL: _SELLING + _NEW_PRODUCTS + _MEDICAL,
    Category.PROMOTIONAL: _MEDICAL,
}


def forbidden_words(
    category: Category, overrides: dict[str, list[str]] | None = None
) -> tuple[str, ...]:
    """The category's forbidden words: the brand's list when it names the category."""
    if overrides and category.value in overrides:
        return tuple(overrides[category.value])
    return DEFAULT_FORBIDDEN_WORDS[category]
