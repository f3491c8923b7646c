"""Open an uploaded file as a stream of normalised orders, or say clearly why it is not an export.

`open_export` sniffs the file (XLSX by its zip magic, otherwise text decoded as UTF-8 with or
without BOM, then GB18030), finds the header row among the first lines, picks the format and
returns an `ExportReader`: a generator of `NormalizedOrder` / `RejectedRow` that never holds the
whole file, so a million-row export stays within a few dozen MB.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import re
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import tzinfo
from pathlib import Path
from typing import BinaryIO, Self

from bot.orders import text
from bot.orders.formats import (
    Columns,
    ExportFormat,
    ItemReport,
    ReadContext,
    detect_format,
    normalize_header,
)
from bot.orders import limits
from bot.orders.limits import LimitError, check_order, fit_merged
from bot.orders.model import STATUS_RANK, NormalizedOrder, RejectedRow
from bot.orders.values import RowError, clean_text
from bot.render import mask_phone

Source = str | Path | bytes | bytearray | memoryview | BinaryIO

HEAD_BYTES = 256 * 1024
HEADER_SEARCH_ROWS = 10
#: Orders of a grouped format (Douyin, JD) kept open while their item rows stream by. Exports list
#: an order's item rows together; if one came back after 2000 other orders, that part would be
#: emitted as a second order and merged by the upsert (its amount replacing the first part's).
GROUP_WINDOW = 2000

_BINARY_MAGIC = (
    b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"%PDF", b"Rar!", b"7z\xbc\xaf", b"\x1f\x8b", b"BM", b"RIFF",
)
#: Header words of columns holding personal data, left out of rejected-row details.
PERSONAL_COLUMN_MARKS = ("地址", "手机", "电话", "收货人", "收件人", "姓名", "身份证", "街道", "phone", "address")
#: Free-text columns (订单备注, 买家留言, 卖家备注, …): left out of rejected-row details entirely; they
#: hold addresses, phone numbers and whatever a buyer typed.
FREE_TEXT_COLUMN_MARKS = ("备注", "留言", "说明", "remark", "memo", "message", "note", "comment")
_PHONE_IN_TEXT = re.compile(r"(?<!\d)(?:\+?86[ -]?)?(1[3-9]\d)[ -]?(\d{4})[ -]?(\d{4})(?!\d)")


def mask_phones_in(value: str) -> str:
    """Every mainland mobile number inside `value` as 138****1234."""
    return _PHONE_IN_TEXT.sub(lambda m: f"{m.group(1)}****{m.group(3)}", value)


_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # legacy .xls / .doc
_ZIP_MAGIC = b"PK\x03\x04"


class NotAnExport(Exception):
    """The file is not an order export we can read. `message_zh` tells the sender what to send."""

    def __init__(self, reason: str, *, filename: str = "", **params: object) -> None:
        self.reason = reason
        self.filename = filename
        self.message_zh = text.file_error(reason, filename=filename, **params)
        super().__init__(f"{reason}: {filename or '<bytes>'}")

    def __reduce__(self):  # crosses from the parsing process with its rendered message
        return _rebuilt_refusal, (self.reason, self.filename, self.message_zh)


def _rebuilt_refusal(reason: str, filename: str, message_zh: str) -> NotAnExport:
    refusal = NotAnExport.__new__(NotAnExport)
    Exception.__init__(refusal, f"{reason}: {filename or '<bytes>'}")
    refusal.reason, refusal.filename, refusal.message_zh = reason, filename, message_zh
    return refusal


Row = tuple[int, list]  # (line or row number in the file, cells)


@dataclass
class ExportReader:
    """Iterate to get orders and rejected rows; `rows_read`/`skipped` grow as it goes."""

    format: ExportFormat
    columns: Columns
    header: list[str]
    context: ReadContext
    filename: str
    _rows: Iterator[Row]
    _close: Callable[[], None]
    rows_read: int = 0
    skipped: int = 0
    _done: bool = field(default=False, repr=False)

    @property
    def platform(self) -> str | None:
        return self.format.platform or self.context.platform

    def __iter__(self) -> Iterator[NormalizedOrder | RejectedRow]:
        return self._grouped() if self.format.group_by_order else self._plain()

    def close(self) -> None:
        if not self._done:
            self._done = True
            self._close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def reject(self, line: int, cells: Sequence[object], error: RowError) -> RejectedRow:
        return RejectedRow(
            line=line,
            reason_code=error.reason_code,
            message_zh=text.row_error(
                error.reason_code, error.column, limits.preview(error.value), getattr(error, "limit", "")
            ),
            raw=self._raw(cells),
        )

    def _checked(self, order: NormalizedOrder) -> NormalizedOrder:
        """The order if every field is within bot.orders.limits, else RowError (row rejected)."""
        try:
            check_order(order)
        except LimitError as over:
            reason = "too_long" if isinstance(over.value, str) else "out_of_range"
            error = RowError(reason, self.columns.name(over.field), over.value)
            error.limit = over.limit
            error.order_no = order.order_no if over.field != "order_no" else None
            raise error from None
        return order

    def _count_row(self) -> None:
        self.rows_read += 1
        if self.rows_read > limits.MAX_ROWS:
            raise NotAnExport("too_many_rows", filename=self.filename, max_rows=limits.MAX_ROWS)

    def _raw(self, cells: Sequence[object]) -> dict[str, str]:
        """The row's cells by header name, minus addresses, phones and real names (the rejected-rows
        CSV goes back into a chat)."""
        raw = {}
        order_no_at = self.columns.at("order_no")
        for i, (name, cell) in enumerate(zip(self.header, cells)):
            lowered = name.lower()
            if cell is None or cell == "" or any(mark in lowered for mark in (*PERSONAL_COLUMN_MARKS, *FREE_TEXT_COLUMN_MARKS)):
                continue
            value = limits.shorten(str(cell), 200)
            raw.setdefault(name or "?", value if i == order_no_at else mask_phones_in(mask_phone(value)))
        return raw

    def _plain(self) -> Iterator[NormalizedOrder | RejectedRow]:
        read, pad = self.format.row_reader(self.columns, self.context), self.columns.pad
        for line, cells in self._rows:
            self._count_row()
            try:
                order = read(pad(cells))
                if order is not None:
                    order = self._checked(order)
            except RowError as error:
                yield self.reject(line, cells, error)
                continue
            if order is None:
                self.skipped += 1
                continue
            yield order

    def _grouped(self) -> Iterator[NormalizedOrder | RejectedRow]:
        """Merge item rows into their order; rows of one order are adjacent in practice."""
        read, pad = self.format.row_reader(self.columns, self.context), self.columns.pad
        sub_order = self.columns.at("sub_order_no")
        groups: dict[str, _Group] = {}
        for line, cells in self._rows:
            self._count_row()
            cells = pad(cells)
            failure: RowError | None = None
            try:
                order = read(cells)
                if order is not None:
                    order = self._checked(order)
            except RowError as error:
                if error.order_no is None:
                    yield self.reject(line, cells, error)
                    continue
                key, order, failure = error.order_no, None, error
            else:
                if order is None:
                    self.skipped += 1
                    continue
                key = order.order_no
            group = groups.get(key)
            if group is None:
                group = groups[key] = _Group(key)
                if len(groups) > GROUP_WINDOW:
                    yield from self._emit(groups.pop(next(iter(groups))))
            if failure is not None:
                group.failed.append((line, cells, failure))
            elif not group.add(line, cells, order, clean_text(cells[sub_order])):
                self.skipped += 1
        for group in groups.values():
            yield from self._emit(group)

    def _emit(self, group: _Group) -> Iterator[NormalizedOrder | RejectedRow]:
        if group.failed:
            # Never import half an order: its good item rows are rejected with the bad ones.
            sibling = RowError("sibling_rejected", "", group.order_no)
            rows = [*group.failed, *((line, cells, sibling) for line, cells, _ in group.rows)]
            for line, cells, error in sorted(rows, key=lambda r: r[0]):
                yield self.reject(line, cells, error)
            return
        merged = fit_merged(merge_items([order for _, _, order in group.rows], self.format.amount_rule))
        if merged.amount is not None and merged.amount > limits.AMOUNT_MAX:
            error = RowError("out_of_range", self.columns.name("amount"), merged.amount)
            for line, cells, _ in group.rows:
                yield self.reject(line, cells, error)
            return
        yield merged


@dataclass
class _Group:
    order_no: str
    rows: list = field(default_factory=list)
    failed: list = field(default_factory=list)
    sub_orders: set = field(default_factory=set)

    def add(self, line: int, cells: list, order: NormalizedOrder, sub_key: str) -> bool:
        """False for a repeated sub-order row, which must not be counted twice."""
        if sub_key:
            if sub_key in self.sub_orders:
                return False
            self.sub_orders.add(sub_key)
        self.rows.append((line, cells, order))
        return True


def combine_statuses(codes: Sequence[str]) -> str:
    """The order's status from its items': some shipped and some not is partially_shipped."""
    live = [c for c in codes if c != "closed"]
    if not live:
        return "closed"
    low = min(live, key=STATUS_RANK.__getitem__)
    high = max(live, key=STATUS_RANK.__getitem__)
    if low == "paid_unshipped" and STATUS_RANK[high] >= STATUS_RANK["partially_shipped"]:
        return "partially_shipped"
    return low


def _distinct(values: Sequence[str], sep: str) -> str:
    return sep.join(dict.fromkeys(v for v in values if v))


def merge_items(items: Sequence[NormalizedOrder], amount_rule: str) -> NormalizedOrder:
    """One order from its item rows (Douyin 子订单, JD SKU rows)."""
    if len(items) == 1:
        return items[0]
    first = items[0]
    status = combine_statuses([o.status for o in items])
    amounts = [o.amount for o in items if o.amount is not None]
    if not amounts:
        amount = None
    elif amount_rule == "sum":
        amount = sum(amounts[1:], amounts[0])
    else:
        amount = amounts[0]
    created = [o.created_at for o in items if o.created_at]
    paid = [o.paid_at for o in items if o.paid_at]
    shipped = [o.shipped_at for o in items if o.shipped_at]
    fully_shipped = status in ("shipped", "completed")
    return NormalizedOrder(
        platform=first.platform,
        order_no=first.order_no,
        shop=next((o.shop for o in items if o.shop), ""),
        status=status,
        status_raw=_distinct([o.status_raw for o in items], " / "),
        refunding=any(o.refunding for o in items),
        presale=any(o.presale for o in items),
        created_at=min(created) if created else None,
        paid_at=min(paid) if paid else None,
        # Fully shipped: when the last parcel left; partially: when the first one did.
        shipped_at=(max(shipped) if fully_shipped else min(shipped)) if shipped else None,
        amount=amount,
        buyer=next((o.buyer for o in items if o.buyer), ""),
        item_title=_distinct([o.item_title for o in items], " / "),
        tracking_no=_distinct([o.tracking_no for o in items], ","),
        carrier=_distinct([o.carrier for o in items], ","),
        on_hold=any(o.on_hold for o in items),
        # the earliest promise of any item is the order's deadline
        ship_from=min((o.ship_from for o in items if o.ship_from), default=None),
        ship_by=min((o.ship_by for o in items if o.ship_by), default=None),
    )


# --- Opening and sniffing -------------------------------------------------------------------------


def _open_binary(source: Source) -> tuple[BinaryIO, int]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        return io.BytesIO(data), len(data)
    if isinstance(source, (str, Path)):
        handle = open(source, "rb")  # noqa: SIM115 - the reader owns it and closes it
        return handle, os.fstat(handle.fileno()).st_size
    position = source.tell()
    size = source.seek(0, io.SEEK_END) - position
    source.seek(position)
    return source, size


def open_export(
    source: Source,
    *,
    tz: tzinfo,
    filename: str = "",
    platform: str | None = None,
    shop: str | None = None,
    max_bytes: int | None = None,
) -> ExportReader:
    """Sniff and open `source`; raises NotAnExport (nothing read further) when it is not an export."""
    if isinstance(source, (str, Path)) and not filename:
        filename = Path(source).name
    binary, size = _open_binary(source)
    workbook = None
    try:
        if size == 0:
            raise NotAnExport("empty", filename=filename)
        if max_bytes is not None and size > max_bytes:
            raise NotAnExport("too_large", filename=filename, max_mb=max(1, round(max_bytes / 2**20)))
        head = binary.read(HEAD_BYTES)
        binary.seek(0)
        if not head.strip(b" \t\r\n\xef\xbb\xbf"):
            raise NotAnExport("empty", filename=filename)
        if head.startswith(_ZIP_MAGIC):
            workbook, sheets = _open_workbook(binary, filename)
            rows_sources = sheets
            is_workbook = True
        else:
            _refuse_non_text(head, filename)
            encoding = _sniff_encoding(binary, head, filename)
            rows_sources = [_csv_rows(binary, encoding, _delimiter(head, encoding), filename)]
            is_workbook = False
        ctx = ReadContext(tz=tz, shop=shop or "", platform=platform)
        found = _find_header(rows_sources, is_workbook, filename)
        fmt, header, rows = found
        if platform and fmt.platform and platform != fmt.platform:
            raise NotAnExport(
                "platform_mismatch",
                filename=filename,
                detected=text.platform_name(fmt.platform),
                requested=text.platform_name(platform),
            )
        _check_header(header, fmt, filename)
        columns = Columns(header, fmt.aliases, lower=fmt.lower_headers)
        missing = [c for c in fmt.required if c not in columns]
        if missing:
            wanted = " / ".join(" | ".join(fmt.aliases[c]) for c in missing)
            raise NotAnExport("missing_columns", filename=filename, detected=wanted)
    except BaseException:
        if workbook is not None:
            workbook.close()
        binary.close()
        raise

    def close() -> None:
        if workbook is not None:
            workbook.close()
        binary.close()

    return ExportReader(fmt, columns, header, ctx, filename, rows, close)


def _check_header(header: list[str], fmt: ExportFormat, filename: str) -> None:
    """Refuse a header that is too wide, or that names a column we read twice (ambiguous)."""
    if len(header) > limits.MAX_COLUMNS:
        raise NotAnExport("too_many_columns", filename=filename, max_columns=limits.MAX_COLUMNS)
    known = {(a.lower() if fmt.lower_headers else a) for options in fmt.aliases.values() for a in options}
    seen: dict[str, int] = {}
    for name in header:
        key = name.lower() if fmt.lower_headers else name
        if key in known:
            seen[name] = seen.get(name, 0) + 1
    twice = [name for name, n in seen.items() if n > 1]
    if twice:
        raise NotAnExport("duplicate_columns", filename=filename, detected="、".join(f"「{n}」" for n in twice))


def _find_header(sources: list[Iterator[Row]], workbook: bool, filename: str):
    """The first row, among the first few of the first sheet that has one, that names a format."""
    saw_items = False
    for rows in sources:
        for _ in range(HEADER_SEARCH_ROWS):
            try:
                _, cells = next(rows)
            except StopIteration:
                break
            header = [normalize_header(c) for c in cells]
            try:
                fmt = detect_format(header, workbook=workbook)
            except ItemReport:
                saw_items = True
                break
            if fmt is not None:
                return fmt, header, rows
    raise NotAnExport("item_report" if saw_items else "unknown_header", filename=filename)


def _refuse_non_text(head: bytes, filename: str) -> None:
    if head.startswith(_OLE_MAGIC):
        raise NotAnExport("xls_legacy", filename=filename)
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise NotAnExport("utf16", filename=filename)
    if head.startswith(_BINARY_MAGIC):
        raise NotAnExport("binary", filename=filename)
    sample = head[:4096]
    zeros = sample.count(b"\x00")
    if zeros:
        # UTF-16 text without BOM: every other byte is zero.
        even, odd = sample[0::2].count(0), sample[1::2].count(0)
        if zeros > len(sample) // 4 and (even == 0 or odd == 0):
            raise NotAnExport("utf16", filename=filename)
        raise NotAnExport("binary", filename=filename)
    controls = sum(1 for b in sample if b < 32 and b not in (9, 10, 13))
    if controls > len(sample) // 100:
        raise NotAnExport("binary", filename=filename)


def _decodes(data: bytes, encoding: str) -> bool:
    try:
        decoded = codecs.getincrementaldecoder(encoding)("strict").decode(data, final=False)
    except UnicodeDecodeError:
        return False
    return "\ufffd" not in decoded


def _sniff_encoding(binary: BinaryIO, head: bytes, filename: str) -> str:
    """utf-8-sig, else gb18030 (a superset of GBK), judged on the first non-ASCII bytes."""
    sample = head
    if head.isascii() and len(head) == HEAD_BYTES:
        # Header and first rows are ASCII (a generic CSV): look further for the first non-ASCII text.
        binary.seek(0)
        while chunk := binary.read(1 << 20):
            if not chunk.isascii():
                start = next(i for i, b in enumerate(chunk) if b >= 0x80)
                sample = chunk[start : start + 65536]
                break
        binary.seek(0)
    for encoding in ("utf-8-sig", "gb18030"):
        if _decodes(sample, encoding):
            return encoding
    raise NotAnExport("bad_encoding", filename=filename)


def _delimiter(head: bytes, encoding: str) -> str:
    first_line = head.split(b"\n", 1)[0]
    return "\t" if first_line.count(b"\t") > first_line.count(b",") else ","


class _DamageGuard(io.RawIOBase):
    """Passes the file's bytes through, failing on an encoded U+FFFD.

    A replacement character can only be in the bytes if some tool already damaged the text
    while converting it; checking the raw chunks costs nothing next to checking every line.
    """

    def __init__(self, raw: BinaryIO, encoding: str, filename: str) -> None:
        self._raw = raw
        self._mark = "\ufffd".encode("utf-8" if encoding.startswith("utf-8") else encoding)
        self._tail = b""
        self._filename = filename

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._raw.read(len(buffer))
        if self._mark in self._tail + data[: len(self._mark)] or self._mark in data:
            raise NotAnExport("bad_encoding", filename=self._filename)
        self._tail = (self._tail + data)[1 - len(self._mark) :]
        buffer[: len(data)] = data
        return len(data)


def _csv_rows(binary: BinaryIO, encoding: str, delimiter: str, filename: str) -> Iterator[Row]:
    """Non-blank CSV rows with their line numbers. A decoding failure anywhere is fatal."""
    guarded = io.BufferedReader(_DamageGuard(binary, encoding, filename), buffer_size=1 << 16)
    stream = io.TextIOWrapper(guarded, encoding=encoding, errors="strict", newline="")
    reader = csv.reader(stream, delimiter=delimiter)
    try:
        for cells in reader:
            if len(cells) > limits.MAX_COLUMNS:
                raise NotAnExport("too_many_columns", filename=filename, max_columns=limits.MAX_COLUMNS)
            if any(cells):
                yield reader.line_num, cells
    except UnicodeDecodeError:
        raise NotAnExport("bad_encoding", filename=filename) from None
    except csv.Error as exc:
        # a cell over csv's field limit (128 KB): a 10 MB line without breaks, or an unclosed quote
        reason = "cell_too_long" if "field larger" in str(exc) else "binary"
        raise NotAnExport(reason, filename=filename) from None


def _open_workbook(binary: BinaryIO, filename: str):
    from zipfile import BadZipFile

    import openpyxl  # imported here: CSV-only processes never pay for it
    from openpyxl.utils.exceptions import InvalidFileException

    check_workbook(binary, filename)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            workbook = openpyxl.load_workbook(binary, read_only=True, data_only=True)
    except (BadZipFile, InvalidFileException, KeyError, OSError, ValueError):
        raise NotAnExport("not_a_workbook", filename=filename) from None
    sheets = []
    for sheet in workbook.worksheets:
        if hasattr(sheet, "reset_dimensions"):
            sheet.reset_dimensions()  # exporters often write a wrong <dimension>
        sheets.append(_sheet_rows(sheet))
    return workbook, sheets


def _sheet_rows(sheet) -> Iterator[Row]:
    # Cells right of column MAX_COLUMNS are never read: check_workbook refused sheets using them.
    for number, values in enumerate(sheet.iter_rows(max_col=limits.MAX_COLUMNS, values_only=True), start=1):
        if any(v is not None and v != "" for v in values):
            yield number, list(values)


_CELL_REF_WIDE = re.compile(rb'<(?:\w+:)?c\b[^>]*?\br="([A-Z]{3})\d+"')


def _column_number(letters: bytes) -> int:
    number = 0
    for letter in letters:
        number = number * 26 + letter - 64
    return number


def check_workbook(binary: BinaryIO, filename: str) -> None:
    """Refuse an XLSX from its zip directory, BEFORE any XML is parsed: a part too large, a part
    compressed beyond XLSX_RATIO_MAX (a zip bomb), too many rows or cells beyond MAX_COLUMNS.

    Worksheets are then streamed once through zlib (no XML parsing, constant memory) to count
    their rows and find cells right of column MAX_COLUMNS. zipfile stops every part at its
    declared size, so a lying directory cannot inflate past these checks.
    """
    import zipfile

    def refuse(reason: str, **params: object) -> NotAnExport:
        return NotAnExport(reason, filename=filename, **params)

    position = binary.tell()
    try:
        archive = zipfile.ZipFile(binary)
    except (zipfile.BadZipFile, OSError, ValueError):
        raise refuse("not_a_workbook") from None
    try:
        infos = archive.infolist()
        total = 0
        sheets = []
        for info in infos:
            name = info.filename
            if name.startswith("xl/worksheets/") and name.endswith(".xml"):
                cap = limits.XLSX_PART_MAX
                sheets.append(info)
            elif name == "xl/sharedStrings.xml":
                cap = limits.XLSX_SHARED_STRINGS_MAX
            else:
                cap = limits.XLSX_OTHER_PART_MAX
            total += info.file_size
            too_compressed = (
                info.file_size > limits.XLSX_RATIO_FLOOR
                and info.file_size > limits.XLSX_RATIO_MAX * max(info.compress_size, 1)
            )
            if too_compressed:
                raise refuse("xlsx_bomb", detected=name)
            if info.file_size > cap or total > limits.XLSX_TOTAL_MAX:
                raise refuse("xlsx_part_too_large", detected=name, max_mb=cap // 2**20)
        for info in sheets:
            _scan_sheet(archive, info, refuse)
    except NotAnExport:
        raise
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, RuntimeError, NotImplementedError):
        raise refuse("not_a_workbook") from None
    finally:
        archive.close()
        binary.seek(position)


def _scan_sheet(archive, info, refuse) -> None:
    rows = 0
    tail = b""
    with archive.open(info) as part:
        while chunk := part.read(1 << 20):
            data = tail + chunk
            rows += data.count(b"<row") - tail.count(b"<row")
            for match in _CELL_REF_WIDE.finditer(data):
                if _column_number(match.group(1)) > limits.MAX_COLUMNS:
                    raise refuse("too_many_columns", max_columns=limits.MAX_COLUMNS)
            tail = data[-256:]
            if rows > limits.MAX_ROWS + HEADER_SEARCH_ROWS:
                raise refuse("too_many_rows", max_rows=limits.MAX_ROWS)
