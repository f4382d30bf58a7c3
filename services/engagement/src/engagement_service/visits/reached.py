"""Whether a visit or call reached the customer, for the analysis's best contact times
(``visit.recorded``'s ``reached``, deploy/README.md).

A visit's outcome is the staff member's own words, with no code to read; a visit is logged once
it was made, so it reached the customer unless its outcome says it did not: a call nobody
answered, refused, a phone switched off, out of service, an empty number or a busy line, a
customer who could not be contacted, nobody at home. Those words are few and stable in how the
stores write them (Chinese, and the English a system integration might send).
"""

# Matched as parts of the outcome (未接 covers 未接通 and 未接听), English case-insensitively.
NOT_REACHED = (
    "未接",
    "没接",
    "无人接",
    "没人接",
    "不接",
    "拒接",
    "关机",
    "停机",
    "空号",
    "占线",
    "忙音",
    "无法接通",
    "打不通",
    "联系不上",
    "未联系上",
    "没联系上",
    "不在家",
    "无人在家",
    "没人在家",
    "no answer",
    "not answered",
    "unanswered",
    "not reached",
    "unreachable",
    "voicemail",
    "line busy",
    "switched off",
    "nobody home",
    "no one home",
    "not at home",
)


def reached(outcome: str) -> bool:
    """True unless ``outcome`` says the customer was not reached."""
    said = outcome.lower()
    return not any(marker in said for marker in NOT_REACHED)
