"""Which API field each spreadsheet column holds, from the header as a store wrote it.

Headers are matched after NFKC (full-width letters and colons become plain ones), case folding,
and dropping spaces, underscores, dots, slashes, trailing ``:`` or ``*`` and a bracketed hint such
as ``金额(元)``. The English API names match too.
"""

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["customers", "purchases"]
KINDS: tuple[Kind, ...] = ("customers", "purchases")


@dataclass(frozen=True, slots=True)
class Meaning:
    """What a column holds: an API field, and values every row of it implies (农历生日 → lunar)."""

    field: str
    implies: tuple[tuple[str, str], ...] = ()
    # Digits typed into these are identifiers, not quantities: a numeric cell comes back as text.
    text: bool = False

    def implied(self, name: str) -> str | None:
        return next((value for key, value in self.implies if key == name), None)


_LUNAR = (("birthday_calendar", "lunar"),)
_SOLAR = (("birthday_calendar", "solar"),)
_LANDLINE = (("kind", "landline"),)

_CUSTOMER_COLUMNS: tuple[tuple[Meaning, tuple[str, ...]], ...] = (
    (Meaning("name"), ("name", "姓名", "名字", "顾客姓名", "客户姓名", "会员姓名", "顾客名称")),
    (Meaning("gender"), ("gender", "性别")),
    (
        Meaning("phone", text=True),
        ("phone", "电话", "手机", "手机号", "手机号码", "联系电话", "电话号码", "联系方式"),
    ),
    (Meaning("phones", _LANDLINE, text=True), ("landline", "座机", "固定电话", "固话", "家庭电话")),
    (Meaning("birthday"), ("birthday", "生日", "出生日期", "出生年月日")),
    (Meaning("birthday", _SOLAR), ("公历生日", "阳历生日", "新历生日")),
    (Meaning("birthday", _LUNAR), ("农历生日", "阴历生日", "旧历生日", "lunar_birthday")),
    (Meaning("birthday_calendar"), ("birthday_calendar", "历法", "生日类型", "公历/农历")),
    (Meaning("approximate_age"), ("approximate_age", "age", "年龄")),
    (Meaning("ethnicity"), ("ethnicity", "民族")),
    (
        Meaning("address"),
        ("address", "地址", "住址", "家庭住址", "家庭地址", "联系地址", "详细地址"),
    ),
    (Meaning("address.province"), ("address.province", "province", "省", "省份")),
    (Meaning("address.city"), ("address.city", "city", "市", "城市")),
    (Meaning("address.district"), ("address.district", "district", "区", "区县", "县区")),
    (Meaning("address.street"), ("address.street", "street", "街道")),
    (Meaning("id_number", text=True), ("id_number", "身份证", "身份证号", "身份证号码")),
    (Meaning("email"), ("email", "邮箱", "电子邮箱", "电子邮件")),
    (
        Meaning("source.channel"),
        ("source.channel", "source", "来源", "收档渠道", "渠道", "顾客来源", "客户来源"),
    ),
    (Meaning("source.method"), ("source.method", "收档方式", "获取方式", "来源方式")),
    (Meaning("referrer", text=True), ("referrer", "推荐人", "介绍人", "转介绍人")),
    (Meaning("wedding_anniversary"), ("wedding_anniversary", "结婚纪念日")),
    (Meaning("notes"), ("notes", "备注", "说明")),
    (Meaning("owner"), ("owner", "服务代表", "导购", "服务人员", "负责人", "责任人")),
    (
        Meaning("external_id", text=True),
        ("external_id", "外部编号", "会员卡号", "会员编号", "卡号", "档案编号"),
    ),
)

_PURCHASE_COLUMNS: tuple[tuple[Meaning, tuple[str, ...]], ...] = (
    (
        Meaning("phone", text=True),
        ("phone", "电话", "手机", "手机号", "手机号码", "联系电话", "顾客电话"),
    ),
    (Meaning("customer_id", text=True), ("customer_id", "顾客编号", "客户编号", "顾客id")),
    (
        Meaning("external_id", text=True),
        ("external_id", "外部编号", "会员卡号", "会员编号", "卡号"),
    ),
    (
        Meaning("purchased_at"),
        (
            "purchased_at",
            "日期",
            "时间",
            "购买日期",
            "购买时间",
            "消费日期",
            "消费时间",
            "销售日期",
            "销售时间",
        ),
    ),
    (Meaning("sku", text=True), ("sku", "商品编码", "产品编码", "商品编号", "货号")),
    (Meaning("qty"), ("qty", "quantity", "数量", "盒数")),
    (Meaning("amount"), ("amount", "金额", "消费金额", "实收金额", "总金额", "小计")),
    (Meaning("unit_price"), ("unit_price", "单价")),
)

# Columns stores keep that the import has no use for: not worth reporting as unknown.
_IGNORED: dict[Kind, tuple[str, ...]] = {
    "customers": ("序号", "no", "#"),
    "purchases": ("序号", "no", "#", "姓名", "顾客姓名", "商品名称", "品名", "规格", "name"),
}

# At least one field of each group must have a column, or the sheet is refused.
REQUIRED: dict[Kind, tuple[tuple[str, ...], ...]] = {
    "customers": (("name",),),
    "purchases": (
        ("phone", "customer_id", "external_id"),
        ("purchased_at",),
        ("sku",),
        ("qty",),
        ("amount", "unit_price"),
    ),
}
# How a missing group is named to the user.
_REQUIRED_LABELS = {
    "name": "name (姓名)",
    "phone": "phone (电话) or customer_id (顾客编号)",
    "purchased_at": "purchased_at (日期)",
    "sku": "sku (商品编码)",
    "qty": "qty (数量)",
    "amount": "amount (金额)",
}

_BRACKETED = re.compile(r"[(\[【].*?[)\]】]")
_NOISE = re.compile(r"[\s_\-./:：*]")


def normalise_header(text: object) -> str:
    """The form a header is matched in: 「 手机号： 」, 「手机号*」 and 「手机号」 are one."""
    folded = unicodedata.normalize("NFKC", str(text)).casefold()
    return _NOISE.sub("", _BRACKETED.sub("", folded))


def _index(
    columns: tuple[tuple[Meaning, tuple[str, ...]], ...],
) -> dict[str, Meaning]:
    return {normalise_header(word): meaning for meaning, words in columns for word in words}


_MEANINGS: dict[Kind, dict[str, Meaning]] = {
    "customers": _index(_CUSTOMER_COLUMNS),
    "purchases": _index(_PURCHASE_COLUMNS),
}
_IGNORED_NORMALISED = {
    kind: {normalise_header(word) for word in words} for kind, words in _IGNORED.items()
}


@dataclass(frozen=True, slots=True)
class Column:
    index: int
    header: str
    meaning: Meaning


@dataclass(frozen=True, slots=True)
class Columns:
    """The header row of a sheet, read: which column holds which field, and what was not known."""

    kind: Kind
    row: int
    recognised: tuple[Column, ...]
    unknown: tuple[str, ...]
    missing: tuple[str, ...]
    # The columns holding each field, in sheet order (a sheet may have 手机 and 电话 both).
    by_field: dict[str, tuple[Column, ...]] = field(default_factory=dict, repr=False)

    def of(self, name: str) -> tuple[Column, ...]:
        return self.by_field.get(name, ())

    @property
    def text_indices(self) -> frozenset[int]:
        return frozenset(c.index for c in self.recognised if c.meaning.text)


def recognise_headers(cells: Sequence[object], *, kind: Kind, row: int = 1) -> Columns:
    """Read one row as the header row of a sheet of `kind`."""
    meanings = _MEANINGS[kind]
    recognised: list[Column] = []
    unknown: list[str] = []
    for index, cell in enumerate(cells):
        header = str(cell).strip() if cell is not None else ""
        if not header:
            continue
        key = normalise_header(header)
        meaning = meanings.get(key)
        if meaning is not None:
            recognised.append(Column(index, header, meaning))
        elif key and key not in _IGNORED_NORMALISED[kind]:
            unknown.append(header)
    by_field: dict[str, list[Column]] = {}
    for column in recognised:
        by_field.setdefault(column.meaning.field, []).append(column)
    missing = tuple(
        _REQUIRED_LABELS[group[0]]
        for group in REQUIRED[kind]
        if not any(name in by_field for name in group)
    )
    return Columns(
        kind=kind,
        row=row,
        recognised=tuple(recognised),
        unknown=tuple(unknown),
        missing=missing,
        by_field={name: tuple(cols) for name, cols in by_field.items()},
    )
