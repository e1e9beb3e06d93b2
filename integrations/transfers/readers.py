"""Rows of an uploaded CSV or Excel file, streamed: CSV in UTF-8, UTF-8 with a BOM or GBK (as
Excel writes them in China), .xlsx through openpyxl's read-only mode.  Every cell comes back
as a stripped string; rows are numbered as the spreadsheet shows them (the header is row 1)."""

import codecs
import csv
import io
from collections.abc import Iterator
from datetime import date, datetime
from typing import IO

from django.utils.translation import gettext as _

from scrm.api.errors import ApplicationError

SNIFF_BYTES = 1 << 16
FORMATS = ("csv", "xlsx")
XLSX_MAGIC = b"PK\x03\x04"


def file_format(name: str, head: bytes) -> str:
    if head.startswith(XLSX_MAGIC):
        if not name.lower().endswith(".xlsx"):
            raise ApplicationError(_("只支持 .xlsx 格式的 Excel 文件（不支持 .xls）。"),
                                   code="unsupported_file")
        return "xlsx"
    if name.lower().endswith((".xls", ".xlsx")):
        raise ApplicationError(_("文件不是有效的 .xlsx 文件。"), code="unsupported_file")
    return "csv"


def csv_encoding(head: bytes) -> str:
    """utf-8-sig when the file starts with a BOM, utf-8 when its start decodes as such,
    otherwise GB18030 (a superset of GBK that decodes anything Excel writes)."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        decoder.decode(head, final=False)  # a character cut at the end is not an error
    except UnicodeDecodeError:
        return "gb18030"
    return "utf-8"


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a phone number Excel stored as a number
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    return str(value).strip()


def _csv_rows(handle: IO[bytes], encoding: str) -> Iterator[list[str]]:
    text = io.TextIOWrapper(handle, encoding=encoding, newline="")
    try:
        for row in csv.reader(text):
            yield [cell.strip() for cell in row]
    except UnicodeDecodeError as exc:
        raise ApplicationError(_("文件编码无法识别，请另存为 UTF-8 或 GBK 编码的 CSV。"),
                               code="unreadable_file") from exc
    except csv.Error as exc:
        raise ApplicationError(_("CSV 格式有误：%(error)s") % {"error": exc},
                               code="unreadable_file") from exc
    finally:
        text.detach()  # the caller's file stays open (closing the wrapper would close it)


def _xlsx_rows(handle: IO[bytes]) -> Iterator[list[str]]:
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(handle, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a damaged file
        raise ApplicationError(_("Excel 文件无法读取。"), code="unreadable_file") from exc
    try:
        for row in workbook.worksheets[0].iter_rows(values_only=True):
            yield [_cell(value) for value in row]
    finally:
        workbook.close()


def rows_read(handle: IO[bytes], *, file_format: str, encoding: str
              ) -> Iterator[tuple[int, list[str]]]:
    """(row number, cells) for every row, the header included, blank rows left out."""
    rows = _xlsx_rows(handle) if file_format == "xlsx" else _csv_rows(handle, encoding)
    for number, cells in enumerate(rows, start=1):
        if any(cells):
            yield number, cells
