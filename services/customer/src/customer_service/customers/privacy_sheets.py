"""The customer's copy (customers/privacy.py's export) as a workbook a person reads: one sheet
per section, columns titled in Chinese with the API's name beside, written by xlsxwriter.

Times are written as text in ISO form with their offset (a spreadsheet date has no time zone),
money as numbers with two places, lists joined with the enumeration comma 、.
"""

import io
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import orjson
import xlsxwriter

# The file's fields in the reader's words (API name → title); nested ones as "address.city".
FIELD_TITLES: dict[str, str] = {
    "id": "顾客编号",
    "store_id": "门店编号",
    "name": "姓名",
    "phone": "主要电话",
    "phones": "电话",
    "gender": "性别",
    "ethnicity": "民族",
    "approximate_age": "大约年龄",
    "birthday": "生日",
    "birthday_calendar": "生日历法",
    "wedding_anniversary": "结婚纪念日",
    "email": "电子邮箱",
    "address": "地址",
    "address.province": "地址·省",
    "address.city": "地址·市",
    "address.district": "地址·区县",
    "address.street": "地址·街道门牌",
    "address.lat": "地址·纬度",
    "address.lng": "地址·经度",
    "id_number": "身份证号",
    "owner_staff_id": "服务代表",
    "deep": "深入信息",
    "deep.occupation": "职业",
    "deep.position": "职位",
    "deep.family_situation": "家庭情况",
    "deep.housing": "住房",
    "deep.personality": "性格",
    "deep.habits": "习惯",
    "deep.favourite_colours": "喜欢的颜色",
    "deep.hobbies": "爱好",
    "deep.lifestyle": "生活方式",
    "deep.service_preference": "服务偏好",
    "deep.promotion_attitude": "对促销的态度",
    "deep.education": "学历",
    "deep.income_band": "收入段",
    "deep.contact_time": "方便联系时间",
    "health.chronic_conditions": "慢性病",
    "health.medical_history": "病史",
    "health.allergies": "过敏",
    "health.current_medicines": "正在服用的药物",
    "health.other_health_products": "其他保健品",
    "health": "健康信息",
    "health_consent_at": "健康信息同意时间",
    "source": "收档来源",
    "source.channel": "收档渠道",
    "source.method": "收档方式",
    "source.activity_id": "活动编号",
    "source.cost": "收档成本",
    "referrer_id": "推荐人",
    "prospect": "意向",
    "prospect.stage": "意向阶段",
    "prospect.grade": "意向等级",
    "consents.sms.granted": "短信同意",
    "consents.sms.at": "短信同意时间",
    "consents.sms.channel": "短信同意渠道",
    "status": "状态",
    "merged_into": "合并至",
    "version": "版本",
    "created_at": "建档时间",
}


def workbook(exported: dict[str, Any]) -> bytes:
    """The export as an .xlsx file's bytes."""
    out = io.BytesIO()
    book = xlsxwriter.Workbook(out, {"in_memory": True, "strings_to_numbers": False})
    book.set_properties({"title": f"顾客档案 {exported['customer_id']}", "comments": "CRM export"})
    formats = _Formats(book)
    _sheet(
        book,
        formats,
        "档案",
        [("字段", "field"), ("内容", "value"), ("字段名", "name")],
        [
            (FIELD_TITLES.get(name, name), value, name)
            for name, value in _flattened(exported["file"])
        ],
    )
    _sheet(
        book,
        formats,
        "家庭关系",
        [("关联顾客编号", "related_customer_id"), ("关系", "kind"), ("记录时间", "since")],
        [
            (r["related_customer_id"], _KINDS.get(r["kind"], r["kind"]), r["since"])
            for r in exported["relations"]
        ],
    )
    _sheet(
        book,
        formats,
        "购买记录",
        [
            ("购买编号", "purchase_id"),
            ("购买时间", "purchased_at"),
            ("门店编号", "store_id"),
            ("员工编号", "staff_id"),
            ("商品编码", "sku"),
            ("数量", "qty"),
            ("单价", "unit_price"),
            ("金额", "amount"),
            ("订单合计", "total"),
            ("禁忌确认", "acknowledgement"),
        ],
        [
            (
                p["id"],
                p["purchased_at"],
                p["store_id"],
                p["staff_id"],
                item["sku"],
                item["qty"],
                Decimal(item["unit_price"]),
                Decimal(item["amount"]),
                Decimal(p["total"]),
                _acknowledged(p["acknowledgement"]),
            )
            for p in exported["purchases"]
            for item in p["items"]
        ],
    )
    _sheet(
        book,
        formats,
        "退货记录",
        [
            ("退货编号", "refund_id"),
            ("购买编号", "purchase_id"),
            ("退货时间", "refunded_at"),
            ("原因", "reason"),
            ("备注", "note"),
            ("商品编码", "sku"),
            ("数量", "qty"),
            ("单价", "unit_price"),
            ("金额", "amount"),
        ],
        [
            (
                r["id"],
                p["id"],
                r["refunded_at"],
                _REFUND_REASONS.get(r["reason"], r["reason"]),
                r["note"],
                item["sku"],
                item["qty"],
                Decimal(item["unit_price"]),
                Decimal(item["amount"]),
            )
            for p in exported["purchases"]
            for r in p["refunds"]
            for item in r["items"]
        ],
    )
    _sheet(
        book,
        formats,
        "同意记录",
        [("同意事项", "consent"), ("是否同意", "granted"), ("时间", "at"), ("渠道", "channel")],
        [
            (_CONSENTS.get(kind, kind), "是" if c["granted"] else "否", c["at"], c["channel"])
            for kind, c in exported["consents"].items()
        ],
    )
    merges = exported["merges"]
    _sheet(
        book,
        formats,
        "合并记录",
        [("关系", "link"), ("档案编号", "customer_id")],
        [("本档案合并至", merges["merged_into"])] * bool(merges["merged_into"])
        + [("合并进本档案", other) for other in merges["merged_from"]],
    )
    imports = exported["imports"]
    _sheet(
        book,
        formats,
        "导入记录",
        [
            ("导入任务", "job_id"),
            ("类型", "kind"),
            ("文件名", "filename"),
            ("导入人", "created_by"),
            ("导入时间", "created_at"),
            ("完成时间", "finished_at"),
            ("行数", "rows"),
        ],
        [
            (
                j["id"],
                j["kind"],
                j["filename"],
                j["created_by"],
                j["created_at"],
                j["finished_at"],
                j["rows"],
            )
            for j in imports["jobs"]
        ],
    )
    _sheet(
        book,
        formats,
        "变更记录",
        [
            ("时间", "at"),
            ("来源", "origin"),
            ("来源编号", "origin_id"),
            ("员工编号", "staff_id"),
            ("更改的字段", "changed"),
            ("未采用的字段", "skipped"),
        ],
        [
            (
                c["at"],
                c["origin"],
                c["origin_id"],
                c["staff_id"],
                _listed(c["changed"]),
                _listed([s.get("field") for s in _listed_json(c["skipped"])]),
            )
            for c in exported["changes"]
        ],
    )
    _sheet(
        book,
        formats,
        "其他服务",
        [("服务", "service"), ("所持数据", "holds"), ("查询方式", "read_with")],
        [(e["service"], "、".join(e["holds"]), e["read_with"]) for e in exported["elsewhere"]]
        + [("说明", exported["note"], "")],
    )
    book.close()
    return out.getvalue()


_KINDS = {
    "spouse": "配偶",
    "parent": "父母",
    "child": "子女",
    "sibling": "兄弟姐妹",
    "other": "其他",
}
_REFUND_REASONS = {
    "family_objection": "家人反对",
    "pushed_too_hard": "推销过度",
    "no_effect": "无效果",
    "quality": "质量问题",
    "other": "其他",
}
_CONSENTS = {"sms": "短信营销", "health": "保存健康信息"}


class _Formats:
    def __init__(self, book: Any) -> None:
        self.title = book.add_format({"bold": True, "bg_color": "#DDEBF7", "text_wrap": True})
        self.money = book.add_format({"num_format": "0.00"})
        self.text = book.add_format({"text_wrap": False})


def _sheet(
    book: Any,
    formats: _Formats,
    name: str,
    columns: Sequence[tuple[str, str]],
    rows: Iterable[Sequence[Any]],
) -> None:
    """One section: titles "中文 (api_name)" on the first row, frozen; widths fitted to the
    longest cell (a Han character counts two)."""
    sheet = book.add_worksheet(name)
    titles = [f"{chinese} ({api})" for chinese, api in columns]
    widths = [_width(t) for t in titles]
    sheet.write_row(0, 0, titles, formats.title)
    for r, row in enumerate(rows, start=1):
        for c, value in enumerate(row):
            cell = _cell(value)
            if isinstance(cell, Decimal):
                sheet.write_number(r, c, float(cell), formats.money)
            elif isinstance(cell, bool | int | float):
                sheet.write_number(r, c, cell)
            elif cell is None:
                sheet.write_blank(r, c, None)
            else:
                sheet.write_string(r, c, cell)
            widths[c] = max(widths[c], _width(str(cell if cell is not None else "")))
    for c, width in enumerate(widths):
        sheet.set_column(c, c, min(width + 2, 80))
    sheet.freeze_panes(1, 0)


def _cell(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list):
        return "、".join(str(_cell(v)) for v in value)
    if isinstance(value, bool):
        return "是" if value else "否"
    return value


def _listed_json(value: Any) -> list[Any]:
    # jsonb read through a text statement may come as its text.
    return list(orjson.loads(value) if isinstance(value, str | bytes) else value or [])


def _listed(value: Any) -> str:
    return "、".join(str(v) for v in _listed_json(value))


def _width(text: str) -> int:
    return sum(2 if ord(ch) > 0x2E7F else 1 for ch in text)


def _flattened(file: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """The file's fields one per row: nested objects by dotted name, phones one per row."""
    rows: list[tuple[str, Any]] = []
    for key, value in file.items():
        name = f"{prefix}{key}"
        if key == "phones" and not prefix:
            for phone in value or []:
                primary = "，主要" if phone["primary"] else ""
                rows.append((name, f"{phone['number']}（{phone['kind']}{primary}）"))
        elif isinstance(value, dict):
            rows.extend(_flattened(value, f"{name}."))
        else:
            rows.append((name, value))
    return rows


def _acknowledged(acknowledgement: dict[str, Any] | None) -> str | None:
    if acknowledgement is None:
        return None
    matches = "、".join(
        f"{w['sku']}: {w['matched']}（{w['term']}）" for w in acknowledgement["warnings"]
    )
    return f"{acknowledgement['by']} {_cell(acknowledgement['at'])} {matches}".strip()
