"""One row into a typed candidate, or into errors naming the row, the field and the reason."""

from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from customer_service.imports.cells import amount_of, excel_serial, when_of, whole_number_of
from customer_service.imports.customer_rows import CustomerCandidate, PhoneText, read_customer_row
from customer_service.imports.headers import Columns, recognise_headers
from customer_service.imports.purchase_rows import PurchaseCandidate, read_purchase_row
from customer_service.imports.rows import RepeatedRows, RowError
from customer_service.imports.sheets import Cell, SheetRow, open_sheet

TODAY = date(2025, 6, 1)
SHANGHAI = ZoneInfo("Asia/Shanghai")


def customer(headers: list[str], cells: list[Cell], *, number: int = 2) -> CustomerCandidate:
    result = read_customer_row(
        SheetRow(number, cells), recognise_headers(headers, kind="customers"), today=TODAY
    )
    assert isinstance(result, CustomerCandidate), result
    return result


def customer_errors(headers: list[str], cells: list[Cell], *, number: int = 2) -> list[RowError]:
    result = read_customer_row(
        SheetRow(number, cells), recognise_headers(headers, kind="customers"), today=TODAY
    )
    assert isinstance(result, list), result
    return result


PURCHASE_HEADERS = ["手机", "日期", "商品编码", "数量", "金额"]


def purchase(cells: list[Cell], headers: list[str] = PURCHASE_HEADERS) -> PurchaseCandidate:
    columns = recognise_headers(headers, kind="purchases")
    result = read_purchase_row(SheetRow(2, cells), columns, today=TODAY, timezone=SHANGHAI)
    assert isinstance(result, PurchaseCandidate), result
    return result


def purchase_errors(cells: list[Cell], headers: list[str] = PURCHASE_HEADERS) -> list[RowError]:
    columns = recognise_headers(headers, kind="purchases")
    result = read_purchase_row(SheetRow(2, cells), columns, today=TODAY, timezone=SHANGHAI)
    assert isinstance(result, list), result
    return result


# ---- cells ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cell",
    [
        "1956-03-08",
        "1956/3/8",
        "1956.3.8",
        "1956年3月8日",
        "1956 年 3 月 8 日",
        "１９５６－０３－０８",
        "19560308",
        "1956-03-08 00:00:00",
        "20522",  # an Excel serial in a CSV
        20522.0,  # an Excel serial in a cell without a date format
        date(1956, 3, 8),
    ],
)
def test_dates_in_the_forms_chinese_spreadsheets_hold(cell: Cell) -> None:
    assert when_of(cell) == date(1956, 3, 8)


def test_a_date_and_time_cell_or_text_keeps_its_time() -> None:
    assert when_of(datetime(2024, 5, 6, 14, 30)) == datetime(2024, 5, 6, 14, 30)
    assert when_of("2024/5/6 14:30") == datetime(2024, 5, 6, 14, 30)
    assert when_of(45418.6041666667) == datetime(2024, 5, 6, 14, 30)


def test_excel_serials_count_the_leap_day_1900_never_had() -> None:
    assert excel_serial(1) == date(1900, 1, 1)
    assert excel_serial(59) == date(1900, 2, 28)
    assert excel_serial(61) == date(1900, 3, 1)
    assert excel_serial(45292) == date(2024, 1, 1)
    with pytest.raises(ValueError, match="1900-02-29"):
        excel_serial(60)


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        ("1956-02-30", "not a date"),
        ("1956", "without a month and day"),
        ("3月8日", "not a date"),
        ("明年", "not a date"),
        (time(8, 30), "time of day"),
        (timedelta(hours=2), "time of day"),
    ],
)
def test_what_is_not_a_date_says_why(cell: Cell, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        when_of(cell)


@pytest.mark.parametrize(
    ("cell", "amount"),
    [
        ("¥1,280.50", "1280.50"),
        ("￥99", "99.00"),
        ("128元", "128.00"),
        ("RMB 36.8", "36.80"),
        (12.3, "12.30"),
        (0.1 + 0.2, "0.30"),
        (128, "128.00"),
        ("2.005", "2.01"),
    ],
)
def test_amounts_drop_currency_marks_and_separators_and_keep_two_places(
    cell: Cell, amount: str
) -> None:
    assert str(amount_of(cell)) == amount


@pytest.mark.parametrize("cell", ["-5", "abc", "NaN", True])
def test_what_is_not_an_amount_is_refused(cell: Cell) -> None:
    with pytest.raises(ValueError):
        amount_of(cell)


def test_quantities_are_whole_numbers_with_or_without_a_unit() -> None:
    assert [whole_number_of(c) for c in ("2", "2盒", " 3 瓶", 2.0, 4)] == [2, 2, 3, 2, 4]
    with pytest.raises(ValueError, match="whole"):
        whole_number_of("2.5")


# ---- customers -----------------------------------------------------------------------------


def test_a_full_customer_row() -> None:
    headers = [
        "姓名", "性别", "手机", "座机", "农历生日", "年龄", "民族", "地址", "身份证号", "邮箱",
        "来源", "推荐人", "结婚纪念日", "备注", "服务代表", "会员卡号",
    ]  # fmt: skip
    cells: list[Cell] = [
        " 王　五 ", "男", "13812345678", "0571-88886666", "1956年2月3日", "69岁", "汉族",
        "浙江省杭州市西湖区文三路1号", "11010119560308123x", "ww@example.com", "公园晨练",
        "13912345678", 28000.0, "  爱下棋；血压偏高 ", "李导购", "A-0012",
    ]  # fmt: skip

    row = customer(headers, cells, number=7)

    assert row.row == 7
    assert row.name == "王五"
    assert row.gender == "male"
    assert row.phones == (PhoneText("13812345678"), PhoneText("0571-88886666", "landline"))
    assert (row.birthday, row.birthday_calendar) == (date(1956, 2, 3), "lunar")
    assert row.approximate_age == 69
    assert row.ethnicity == "汉族"
    assert row.address == "浙江省杭州市西湖区文三路1号"
    assert row.id_number == "11010119560308123X"
    assert row.email == "ww@example.com"
    assert row.source_channel == "public_place"
    assert row.referrer == "13912345678"
    assert row.wedding_anniversary == date(1976, 8, 28)
    assert row.notes == "爱下棋；血压偏高"
    assert row.owner == "李导购"
    assert row.external_id == "A-0012"


def test_a_name_alone_is_a_customer() -> None:
    row = customer(["姓名", "电话", "生日"], ["张三", "", "无"])

    assert (row.name, row.phones, row.birthday, row.birthday_calendar) == ("张三", (), None, None)


def test_address_parts_in_their_own_columns() -> None:
    parts = ["浙江", "杭州", "西湖区", "文三路"]
    row = customer(["姓名", "省", "市", "区", "街道"], ["张三", *parts])

    assert [row.province, row.city, row.district, row.street] == parts


def test_a_birthday_is_solar_unless_a_column_or_the_row_says_lunar() -> None:
    assert customer(["姓名", "生日"], ["张三", "1956-03-08"]).birthday_calendar == "solar"
    lunar = customer(["姓名", "生日", "历法"], ["张三", "1956-03-08", "阴历"])
    assert lunar.birthday_calendar == "lunar"


def test_a_row_of_the_lunar_column_that_says_solar_is_an_error() -> None:
    errors = customer_errors(["姓名", "农历生日", "历法"], ["张三", "1956-03-08", "公历"])

    assert [e.field for e in errors] == ["birthday_calendar"]


def test_phones_typed_as_numbers_come_back_as_the_digits_typed() -> None:
    row = customer(["姓名", "手机"], ["张三", 13812345678.0])

    assert row.phones == (PhoneText("13812345678"),)


def test_one_cell_may_hold_several_phones_and_a_repeated_one_counts_once() -> None:
    row = customer(
        ["姓名", "手机", "电话"], ["张三", "13812345678/0571-88886666", "+86 138 1234 5678"]
    )

    assert [p.number for p in row.phones] == ["13812345678", "0571-88886666"]


def test_a_phone_saved_in_scientific_notation_is_kept_only_when_no_digit_was_lost() -> None:
    assert customer(["姓名", "手机"], ["张三", "1.3812345678E+10"]).phones == (
        PhoneText("13812345678"),
    )
    (error,) = customer_errors(["姓名", "手机"], ["张三", "1.38123E+10"])
    assert error.field == "phone"
    assert "lost digits" in error.message


def test_an_id_number_stored_as_a_number_has_lost_digits_and_says_so() -> None:
    (error,) = customer_errors(["姓名", "身份证"], ["张三", 110101195603081234.0])

    assert error.field == "id_number"
    assert "lost digits" in error.message


def test_every_error_of_a_row_is_reported_with_its_row_and_field() -> None:
    headers = ["姓名", "性别", "手机", "生日", "年龄", "邮箱", "来源", "结婚纪念日"]
    cells: list[Cell] = ["", "保密", "abc", "2030-01-01", "200", "no-at-sign", "街上捡的", "x"]

    errors = customer_errors(headers, cells, number=12)

    assert {e.row for e in errors} == {12}
    assert [e.field for e in errors] == [
        "name", "phone", "birthday", "approximate_age", "email", "gender", "source.channel",
        "wedding_anniversary",
    ]  # fmt: skip
    assert errors[0].as_dict() == {"row": 12, "field": "name", "message": "a name is required"}


def test_the_fingerprint_follows_who_the_row_names_not_how_the_sheet_stored_it() -> None:
    headers = ["姓名", "手机", "生日", "备注"]
    from_csv = customer(headers, ["王五", "13812345678", "1956/3/8", "第一次"])
    from_xlsx = customer(headers, ["王　五", 13812345678.0, date(1956, 3, 8), "改过的备注"])
    another_phone = customer(headers, ["王五", "13912345678", "1956/3/8", ""])

    assert from_csv.fingerprint == from_xlsx.fingerprint
    assert from_csv.fingerprint != another_phone.fingerprint


# ---- purchases -----------------------------------------------------------------------------


def test_a_purchase_row_from_an_old_till() -> None:
    row = purchase(["13812345678", "2024/5/6", 100234, "2盒", "¥256.00"])

    assert row.phone == "13812345678"
    assert row.purchased_at == datetime(2024, 5, 6, tzinfo=SHANGHAI)
    assert (row.sku, row.qty, row.amount) == ("100234", 2, Decimal("256.00"))


def test_a_purchase_time_is_taken_in_the_stores_time_zone() -> None:
    row = purchase(["13812345678", datetime(2024, 5, 6, 21, 15), "SKU-1", 1, 99])

    assert row.purchased_at == datetime(2024, 5, 6, 13, 15, tzinfo=ZoneInfo("UTC"))


def test_a_till_that_exports_the_date_and_the_time_in_two_columns() -> None:
    headers = ["手机", "销售时间", "销售日期", "商品编码", "数量", "金额"]

    row = purchase(["13812345678", time(21, 15), date(2024, 5, 6), "SKU-1", 1, 99], headers)
    from_text = purchase(["13812345678", "21:15", "2024-05-06", "SKU-1", 1, 99], headers)

    assert (
        row.purchased_at == from_text.purchased_at == datetime(2024, 5, 6, 21, 15, tzinfo=SHANGHAI)
    )


def test_a_purchase_names_its_customer_by_id_or_external_id() -> None:
    headers = ["顾客编号", "会员卡号", "日期", "商品编码", "数量", "金额"]
    row = purchase(["", "VIP-7", "2024-05-06", "SKU-1", 1, 99], headers)

    assert (row.customer_id, row.external_id, row.phone) == (None, "VIP-7", None)


def test_without_an_amount_the_line_is_its_unit_price_times_its_quantity() -> None:
    headers = ["手机", "日期", "商品编码", "数量", "单价"]
    row = purchase(["13812345678", "2024-05-06", "SKU-1", 3, 19.9], headers)

    assert row.amount == Decimal("59.70")


def test_a_purchase_row_with_errors_names_each_field() -> None:
    errors = purchase_errors(["", "2030-01-01", "", "0", "-3"])

    assert [e.field for e in errors] == ["phone", "purchased_at", "sku", "qty", "amount"]


def test_repeated_identical_lines_are_kept_apart_and_keyed_the_same_on_every_import() -> None:
    line: list[Cell] = ["13812345678", "2024-05-06", "SKU-1", 1, 99]

    def keys() -> list[str]:
        repeated = RepeatedRows()
        return [repeated.key(purchase(line).fingerprint) for _ in range(3)]

    first_import, second_import = keys(), keys()
    assert len(set(first_import)) == 3
    assert first_import == second_import


# ---- from a file ---------------------------------------------------------------------------


def test_a_purchases_workbook_read_end_to_end(xlsx) -> None:
    upload = xlsx(
        {
            "消费记录": [
                ["日期", "手机", "商品名称", "商品编码", "数量", "金额（元）"],
                [datetime(2023, 12, 30, 10, 5), 13812345678, "深海鱼油", 100234, 2, 256],
                [date(2024, 1, 2), 13912345678, "钙片", "200111", 1, "¥88.5"],
                [None, 13712345678, "维生素", 300222, 1, 66],
                ["合计", None, None, None, 4, 410.5],
            ]
        }
    )

    sheet = open_sheet(upload, kind="purchases")
    columns: Columns = sheet.columns
    results = [
        read_purchase_row(row, columns, today=TODAY, timezone=SHANGHAI) for row in sheet.rows
    ]

    first, second, third = results
    assert isinstance(first, PurchaseCandidate) and isinstance(second, PurchaseCandidate)
    assert (first.row, first.phone, first.sku, first.qty, first.amount) == (
        2, "13812345678", "100234", 2, Decimal("256.00"),
    )  # fmt: skip
    assert first.purchased_at == datetime(2023, 12, 30, 10, 5, tzinfo=SHANGHAI)
    assert (second.row, second.amount) == (3, Decimal("88.50"))
    assert third == [RowError(4, "purchased_at", "the date of the purchase is required")]
