"""The report's Chinese labels: the domain's words (DOMAIN.md §1, §3) for the codes the tables
carry. A code not listed here (a value added later) is shown as it is, never dropped."""

VALUE_TIERS = {
    "vip": "VIP客户",
    "major": "大客户",
    "medium": "中级客户",
    "small": "小客户",
    "inactive": "不积极",
    "prospect": "潜在客户",
}
LIFECYCLES = {
    "new_this_year": "年度新购",
    "active_core": "在服核心",
    "active_second_line": "在服二线",
    "in_service_not_bought": "在服但未购",
    "stopped": "停服",
    "lost": "流失",
}
SOURCE_CHANNELS = {
    "public_place": "公园广场",
    "lecture": "科普讲座",
    "senior_activity": "老年活动",
    "referral": "转介绍",
    "media": "媒体互动",
    "partner": "合作联盟",
    "walk_in": "进店",
    "import": "导入",
    "other": "其他",
}
# A group the table could not name (no source given, nobody served, no product code).
UNNAMED = "未注明"
UNCLASSIFIED = "未分类"


def label(words: dict[str, str], code: str | None) -> str:
    if code is None:
        return UNNAMED
    return words.get(code, code)
