"""Reading an upload into rows: XLSX and CSV told apart by content, and files refused whole."""

import io
import sys
import tempfile
import unicodedata
import zipfile
from datetime import date, datetime

import pytest

from customer_service.imports.sheets import ImportRefused, Sheet, open_sheet

CUSTOMERS = [
    ["姓名", "手机", "生日", "来源"],
    ["张三", "13812345678", "1956-03-08", "公园"],
    ["李四", "13912345678", "1960/5/1", "转介绍"],
]


def cells_of(sheet: Sheet) -> list[tuple[int, list[object]]]:
    return [(row.number, list(row.cells)) for row in sheet.rows]


def csv_bytes(rows: list[list[str]], *, encoding: str = "utf-8", delimiter: str = ",") -> bytes:
    return "\r\n".join(delimiter.join(row) for row in rows).encode(encoding)


# ---- XLSX ----------------------------------------------------------------------------------


def test_xlsx_keeps_dates_as_dates_numbers_as_numbers_and_phones_as_digits(xlsx) -> None:
    upload = xlsx(
        {
            "Sheet1": [
                ["姓名", "手机", "生日", "年龄", "外部编号"],
                ["张三", 13812345678, date(1956, 3, 8), 68, 100234],
                ["李四", 13912345678.0, datetime(1960, 5, 1, 9, 30), 64.5, None],
            ]
        }
    )

    sheet = open_sheet(upload, kind="customers")

    assert sheet.format == "xlsx"
    assert cells_of(sheet) == [
        (2, ["张三", "13812345678", date(1956, 3, 8), 68, "100234"]),
        (3, ["李四", "13912345678", datetime(1960, 5, 1, 9, 30), 64.5, ""]),
    ]


def test_xlsx_reads_the_sheet_named_like_the_customer_relations_table(xlsx) -> None:
    upload = xlsx(
        {
            "说明": [["本表由门店填写"]],
            "《顾客关系管理表》": [["姓名", "电话"], ["王五", "13712345678"]],
            "Sheet3": [["姓名"], ["不是这张"]],
        }
    )

    sheet = open_sheet(upload, kind="customers")

    assert sheet.source == "《顾客关系管理表》"
    assert cells_of(sheet) == [(2, ["王五", "13712345678"])]


def test_xlsx_without_such_a_sheet_reads_the_first_visible_one(xlsx) -> None:
    upload = xlsx(
        {"旧表": [["姓名"], ["隐藏的"]], "名单": [["姓名"], ["看得见的"]]},
        hidden=["旧表"],
    )

    assert cells_of(open_sheet(upload, kind="customers")) == [(2, ["看得见的"])]


def test_title_rows_above_the_header_and_blank_rows_keep_the_row_numbers_excel_shows(
    xlsx,
) -> None:
    upload = xlsx(
        {
            "Sheet1": [
                ["顾客关系管理表"],
                ["门店：西湖店", None, "2024年"],
                ["序号", "姓名", "电话"],
                [1, "张三", 13812345678],
                [],
                [2, "李四", 13912345678],
                ["合计", None, None],
            ]
        }
    )

    sheet = open_sheet(upload, kind="customers")

    assert sheet.columns.row == 3
    assert [row.number for row in sheet.rows] == [4, 6]


def test_an_xlsx_with_a_header_and_no_rows_is_refused(xlsx) -> None:
    with pytest.raises(ImportRefused) as refused:
        open_sheet(xlsx({"Sheet1": [["姓名", "电话"], []]}), kind="customers")

    assert refused.value.reason == "no_rows"
    assert "no rows" in refused.value.detail


def test_an_xlsx_whose_sheet_is_empty_is_refused(xlsx) -> None:
    with pytest.raises(ImportRefused) as refused:
        open_sheet(xlsx({"Sheet1": []}), kind="customers")

    assert refused.value.reason == "empty"


def test_a_damaged_xlsx_is_refused_as_unreadable(xlsx) -> None:
    whole = xlsx({"Sheet1": CUSTOMERS})

    with pytest.raises(ImportRefused) as refused:
        open_sheet(whole[: len(whole) // 2], kind="customers")

    assert refused.value.reason == "unreadable"
    assert refused.value.status == 422


def test_a_zip_made_by_a_tool_too_new_to_read_is_refused_as_unreadable(xlsx) -> None:
    upload = bytearray(xlsx({"Sheet1": CUSTOMERS}))
    entry = upload.index(b"PK\x01\x02")  # the first central directory entry
    upload[entry + 6 : entry + 8] = (66).to_bytes(2, "little")  # 'version needed': 6.6

    with pytest.raises(ImportRefused) as refused:
        open_sheet(bytes(upload), kind="customers")

    assert refused.value.reason == "unreadable"


def test_a_zip_with_a_broken_workbook_inside_is_refused_as_unreadable() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.xml", "<workbook><sheets><sheet")
    with pytest.raises(ImportRefused) as refused:
        open_sheet(buffer.getvalue(), kind="customers")

    assert refused.value.reason == "unreadable"


def test_a_workbook_that_unpacks_far_beyond_the_limit_is_refused(xlsx) -> None:
    # Compresses about a thousand to one: a sheet would unpack to gigabytes at full scale.
    notes = [["张三", "x" * 30_000 + str(i)] for i in range(40)]
    upload = xlsx({"Sheet1": [["姓名", "备注"], *notes]})
    assert len(upload) < 20_000

    with pytest.raises(ImportRefused) as refused:
        open_sheet(upload, kind="customers", max_bytes=20_000)

    assert refused.value.reason == "too_large"
    assert "unpacks" in refused.value.detail


# ---- CSV -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("encoding", "prefix"),
    [
        ("utf-8", b""),
        ("utf-8", b"\xef\xbb\xbf"),  # Excel's 'CSV UTF-8': a BOM first
        ("gbk", b""),  # Chinese Excel's plain 'CSV'
        ("gb18030", b""),
        ("utf-16-le", b"\xff\xfe"),  # Excel's 'Unicode text'
    ],
    ids=["utf-8", "utf-8-bom", "gbk", "gb18030", "utf-16"],
)
def test_csv_encodings_are_detected(encoding: str, prefix: bytes) -> None:
    # 𠀀 is outside GBK: only the GB18030 file carries it.
    rows = [*CUSTOMERS, ["𠀀" if encoding == "gb18030" else "赵六", "13712345678", "", "进店"]]

    sheet = open_sheet(prefix + csv_bytes(rows, encoding=encoding), kind="customers")

    assert sheet.format == "csv"
    assert cells_of(sheet) == [(n, row) for n, row in enumerate(rows[1:], start=2)]


@pytest.mark.parametrize("delimiter", [",", ";", "\t"], ids=["comma", "semicolon", "tab"])
def test_csv_delimiters_are_detected(delimiter: str) -> None:
    rows = [["姓名", "地址", "金额"], ["张三", "杭州市, 西湖区", "1,280.00"]]
    text = "\n".join(
        delimiter.join(f'"{cell}"' if delimiter in cell else cell for cell in row) for row in rows
    )

    sheet = open_sheet(text.encode(), kind="customers")

    assert cells_of(sheet) == [(2, ["张三", "杭州市, 西湖区", "1,280.00"])]


def test_a_quoted_line_break_keeps_the_row_numbers_excel_shows() -> None:
    upload = '姓名,备注\n张三,"第一行\n第二行"\n李四,\n'.encode()

    assert cells_of(open_sheet(upload, kind="customers")) == [
        (2, ["张三", "第一行\n第二行"]),
        (3, ["李四", ""]),
    ]


def test_a_csv_whose_text_starts_like_a_zip_is_still_a_csv() -> None:
    sheet = open_sheet("PK号,姓名\n1,张三\n".encode(), kind="customers")

    assert (sheet.format, cells_of(sheet)) == ("csv", [(2, ["1", "张三"])])


@pytest.mark.parametrize("format", ["csv", "xlsx"])
def test_a_spooled_upload_is_read_and_left_open_for_its_owner(format: str, xlsx) -> None:
    content = csv_bytes(CUSTOMERS, encoding="gbk") if format == "csv" else xlsx({"S": CUSTOMERS})
    with tempfile.SpooledTemporaryFile(max_size=16) as upload:  # on disk from the first write
        upload.write(content)

        sheet = open_sheet(upload, kind="customers")

        assert [row.cells[0] for row in sheet.rows] == ["张三", "李四"]
        assert not upload.closed


def test_a_csv_that_turns_unreadable_further_down_is_refused_while_it_is_read() -> None:
    upload = "姓名,备注\n张三,\n李四,{}\n".format("长" * 200_000).encode()
    sheet = open_sheet(upload, kind="customers")

    with pytest.raises(ImportRefused) as refused:
        list(sheet.rows)

    assert refused.value.reason == "unreadable"
    assert "Row 3" in refused.value.detail


def test_a_csv_whose_text_is_neither_utf8_nor_gbk_is_refused() -> None:
    with pytest.raises(ImportRefused) as refused:
        open_sheet("姓名\n张三\n".encode() + b"\x80\xff\n", kind="customers")

    assert refused.value.reason == "unreadable"


# ---- refused whatever the kind -------------------------------------------------------------


@pytest.mark.parametrize(
    ("head", "what"),
    [
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "PDF"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "PNG"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "JPEG"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1\x00\x00", ".xls"),
        (b"\x00\x01\x02\x03binary", "not a spreadsheet"),
    ],
    ids=["pdf", "png", "jpeg", "xls", "binary"],
)
def test_files_of_another_type_are_refused_by_their_bytes(head: bytes, what: str) -> None:
    with pytest.raises(ImportRefused) as refused:
        open_sheet(head + b"\x00" * 200, kind="customers")

    assert refused.value.reason == "unsupported_type"
    assert refused.value.status == 415
    assert what in refused.value.detail


def test_a_zip_that_is_not_a_workbook_is_refused() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("word/document.xml", "<w:document/>")

    with pytest.raises(ImportRefused) as refused:
        open_sheet(buffer.getvalue(), kind="customers")

    assert refused.value.reason == "unsupported_type"
    assert "Word document" in refused.value.detail


@pytest.mark.parametrize("upload", [b"", b"\r\n\r\n  \r\n"], ids=["no-bytes", "blank-lines"])
def test_an_empty_file_is_refused(upload: bytes) -> None:
    with pytest.raises(ImportRefused) as refused:
        open_sheet(upload, kind="customers")

    assert refused.value.reason == "empty"


def test_a_csv_with_a_header_and_no_rows_is_refused() -> None:
    with pytest.raises(ImportRefused) as refused:
        open_sheet("姓名,电话\n,\n".encode("gbk"), kind="customers")

    assert refused.value.reason == "no_rows"


def test_a_file_above_the_size_limit_is_refused_before_it_is_read(xlsx) -> None:
    upload = csv_bytes(CUSTOMERS)

    with pytest.raises(ImportRefused) as refused:
        open_sheet(upload, kind="customers", max_bytes=len(upload) - 1)
    assert refused.value.reason == "too_large"
    assert refused.value.status == 413

    assert open_sheet(upload, kind="customers", max_bytes=len(upload)).format == "csv"


def test_a_sheet_without_a_name_column_is_refused_naming_what_it_found() -> None:
    with pytest.raises(ImportRefused) as refused:
        open_sheet("客户,电话\n张三,13812345678\n".encode(), kind="customers")

    assert refused.value.reason == "no_header"
    assert "姓名" in refused.value.detail
    assert "电话" in refused.value.detail


def test_a_purchases_sheet_needs_its_own_columns(xlsx) -> None:
    customers_sheet = xlsx({"Sheet1": CUSTOMERS})

    with pytest.raises(ImportRefused) as refused:
        open_sheet(customers_sheet, kind="purchases")

    assert refused.value.reason == "no_header"
    for column in ("日期", "商品编码", "数量", "金额"):
        assert column in refused.value.detail


def test_only_the_character_itself_normalises_to_the_mark_of_a_total_row() -> None:
    """A row of text with no 计 is taken for no total row without normalising it: sound only
    while no other character's NFKC form, case folded, holds the 计 both total words end in."""
    from customer_service.imports import sheets

    assert all(word.endswith(sheets._TOTAL_MARK) for word in sheets._TOTAL_ROWS)
    sources = [
        chr(c)
        for c in range(sys.maxunicode + 1)
        if not 0xD800 <= c <= 0xDFFF
        and sheets._TOTAL_MARK in unicodedata.normalize("NFKC", chr(c)).casefold()
    ]
    assert sources == [sheets._TOTAL_MARK]


def test_blank_and_total_rows_are_passed_over_in_a_csv_too() -> None:
    upload = (
        "姓名,电话\n张三,13812345678\n , \n合 计：,\n李四,13912345678\n计划,13712345678\n".encode()
    )

    assert cells_of(open_sheet(upload, kind="customers")) == [
        (2, ["张三", "13812345678"]),
        (5, ["李四", "13912345678"]),
        (6, ["计划", "13712345678"]),
    ]
