"""Headers as stores write them, and coded values in Chinese, mapped onto the API's names."""

import pytest

from customer_service.imports.codes import (
    SOURCE_CHANNELS,
    calendar_code,
    gender_code,
    source_channel_code,
)
from customer_service.imports.headers import recognise_headers


def fields(headers: list[str], kind: str = "customers") -> list[str | None]:
    columns = recognise_headers(headers, kind=kind)  # type: ignore[arg-type]
    by_index = {c.index: c.meaning.field for c in columns.recognised}
    return [by_index.get(i) for i in range(len(headers))]


def test_chinese_customer_headers_map_to_the_api_fields() -> None:
    headers = [
        "姓名", "性别", "手机号", "联系电话", "座机", "出生日期", "年龄", "民族", "住址", "省",
        "市", "区", "街道", "身份证号", "邮箱", "收档渠道", "推荐人", "结婚纪念日", "备注",
        "服务代表", "会员卡号",
    ]  # fmt: skip

    assert fields(headers) == [
        "name", "gender", "phone", "phone", "phones", "birthday", "approximate_age",
        "ethnicity", "address", "address.province", "address.city", "address.district",
        "address.street", "id_number", "email", "source.channel", "referrer",
        "wedding_anniversary", "notes", "owner", "external_id",
    ]  # fmt: skip


def test_the_english_api_names_are_headers_too() -> None:
    assert fields(["name", "Phone", "BIRTHDAY_CALENDAR", "source.channel", "id_number"]) == [
        "name",
        "phone",
        "birthday_calendar",
        "source.channel",
        "id_number",
    ]


@pytest.mark.parametrize(
    "header",
    ["姓名：", "姓名:", " 姓 名 ", "*姓名", "姓名*", "姓名（必填）", "ＮＡＭＥ", "Name"]
    + ["姓名(必填)："],
)
def test_headers_are_matched_through_spaces_full_width_case_and_marks(header: str) -> None:
    assert fields([header]) == ["name"]


def test_a_lunar_birthday_column_says_every_birthday_in_it_is_lunar() -> None:
    columns = recognise_headers(["姓名", "农历生日", "生日"], kind="customers")

    lunar, solar = columns.of("birthday")
    assert lunar.meaning.implied("birthday_calendar") == "lunar"
    assert solar.meaning.implied("birthday_calendar") is None


def test_unknown_columns_are_reported_and_bookkeeping_columns_are_not() -> None:
    columns = recognise_headers(["序号", "姓名", "喜欢的茶", "", "血型"], kind="customers")

    assert columns.unknown == ("喜欢的茶", "血型")
    assert columns.missing == ()


def test_purchase_headers_from_an_old_till() -> None:
    headers = ["日期", "顾客编号", "手机", "商品编码", "商品名称", "数量", "金额（元）", "单价"]

    assert fields(headers, kind="purchases") == [
        "purchased_at", "customer_id", "phone", "sku", None, "qty", "amount", "unit_price",
    ]  # fmt: skip
    columns = recognise_headers(headers, kind="purchases")
    assert columns.unknown == ()
    assert columns.missing == ()


def test_a_purchase_sheet_names_each_missing_column() -> None:
    columns = recognise_headers(["姓名", "电话", "日期"], kind="purchases")

    assert columns.missing == ("sku (商品编码)", "qty (数量)", "amount (金额)")


@pytest.mark.parametrize(
    ("word", "code"),
    [("男", "male"), ("女", "female"), ("女性", "female"), ("Ｍ", "male"), ("F", "female")],
)
def test_genders_written_in_chinese(word: str, code: str) -> None:
    assert gender_code(word) == code


def test_an_unknown_gender_word_is_no_code() -> None:
    assert gender_code("保密") is None


@pytest.mark.parametrize(
    ("word", "code"),
    [("公历", "solar"), ("阳历", "solar"), ("农历", "lunar"), ("阴历", "lunar")]
    + [("LUNAR", "lunar")],
)
def test_calendars_written_in_chinese(word: str, code: str) -> None:
    assert calendar_code(word) == code


@pytest.mark.parametrize(
    ("word", "code"),
    [
        ("公园", "public_place"),
        ("广场", "public_place"),
        ("公园晨练", "public_place"),
        ("科普讲座", "lecture"),
        ("社区活动", "senior_activity"),
        ("转介绍", "referral"),
        ("老顾客介绍", "referral"),
        ("进店", "walk_in"),
        ("自然进店", "walk_in"),
        ("异业联盟", "partner"),
        ("电视", "media"),
        ("其他", "other"),
    ],
)
def test_source_channels_written_in_chinese(word: str, code: str) -> None:
    assert source_channel_code(word) == code


def test_every_source_channel_code_is_accepted_as_itself_and_nothing_else_is_invented() -> None:
    assert [source_channel_code(code) for code in SOURCE_CHANNELS] == list(SOURCE_CHANNELS)
    assert source_channel_code("随便写的") is None
    assert source_channel_code("importantly") is None
