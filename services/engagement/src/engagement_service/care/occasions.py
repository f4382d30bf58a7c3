"""How each special day is cared for: its kind (which lead time applies), method and purpose.

Defined once, as data. The tone follows DOMAIN §5: wishes, never a sale. Birthdays and the
wedding anniversary are a call (a personal day deserves a voice); 重阳 is the seniors' festival,
the one a home visit suits; the other festivals and the season changes are a care message
(DOMAIN §5's `holiday` and `season` templates: weather, clothing and diet, no products).
"""

from dataclasses import dataclass
from enum import StrEnum

from engagement_service.care.special_days import Occasion
from engagement_service.followups.methods import Method


class OccasionKind(StrEnum):
    """What sets an occasion's lead time (``Settings.special_day_lead_days_*``)."""

    PERSONAL = "personal"  # the customer's and the spouse's birthdays, the wedding anniversary
    FESTIVAL = "festival"
    SEASON = "season"  # the solar terms that start each season


@dataclass(frozen=True, slots=True)
class Care:
    kind: OccasionKind
    method: Method
    purpose: str


CARE: dict[Occasion, Care] = {
    Occasion.BIRTHDAY: Care(
        OccasionKind.PERSONAL, Method.PHONE, "birthday wishes; ask after health and family"
    ),
    Occasion.SPOUSE_BIRTHDAY: Care(
        OccasionKind.PERSONAL,
        Method.PHONE,
        "remember the spouse's birthday with the customer; wishes to them both",
    ),
    Occasion.WEDDING_ANNIVERSARY: Care(
        OccasionKind.PERSONAL, Method.PHONE, "wedding anniversary wishes to the couple"
    ),
    Occasion.SPRING_FESTIVAL: Care(
        OccasionKind.FESTIVAL, Method.MESSAGE, "Spring Festival (春节) wishes to the family"
    ),
    Occasion.DRAGON_BOAT: Care(
        OccasionKind.FESTIVAL, Method.MESSAGE, "Dragon Boat Festival (端午) wishes"
    ),
    Occasion.MID_AUTUMN: Care(
        OccasionKind.FESTIVAL,
        Method.MESSAGE,
        "Mid-Autumn Festival (中秋) wishes for a family reunion",
    ),
    Occasion.DOUBLE_NINTH: Care(
        OccasionKind.FESTIVAL,
        Method.HOME,
        "Double Ninth (重阳), the seniors' festival: a visit with wishes for health",
    ),
    Occasion.LICHUN: Care(
        OccasionKind.SEASON, Method.MESSAGE, "spring begins (立春): weather, clothing and diet"
    ),
    Occasion.LIXIA: Care(
        OccasionKind.SEASON, Method.MESSAGE, "summer begins (立夏): heat, water and diet"
    ),
    Occasion.LIQIU: Care(
        OccasionKind.SEASON, Method.MESSAGE, "autumn begins (立秋): dryness, clothing and diet"
    ),
    Occasion.LIDONG: Care(
        OccasionKind.SEASON, Method.MESSAGE, "winter begins (立冬): cold, clothing and diet"
    ),
}
