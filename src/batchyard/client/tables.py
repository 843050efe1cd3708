"""Tables in and out of ``batchyard run``: CSV, JSON Lines and Parquet, chosen by extension.

A table is read whole into a :class:`Table` (a batch holds at most 100,000 requests, so it fits
in memory) and written whole by :func:`write_table`, to a temporary file beside the output that
is renamed into place only once complete: a run cut short never leaves a partial file that looks
complete.

Every failure is a :class:`TableError` (a ``ValueError``) whose message starts with the file:
``tickets.csv: line 7: ...`` where the file's lines are meant (reading CSV or JSON Lines),
``out.jsonl: row 7: ...`` where a row is (the 7th row of data, whatever lines it spans).

Values keep the types their format has: CSV cells are strings (an empty cell is ``""``, a
missing one at the end of a short row ``None``), JSON Lines values are what JSON decodes to,
Parquet values are ``to_pylist``'s Python objects. Written to CSV, a value becomes
:func:`cell_text`.
"""

from __future__ import annotations

import csv
import io
import os
import secrets
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import zip_longest
from pathlib import Path
from typing import IO, Any

import msgspec

_PYARROW_MISSING = "Parquet needs pyarrow: pip install 'batchyard[run]'"
_BOM = b"\xef\xbb\xbf"
_JSON_KINDS: dict[type, str] = {
    list: "an array",
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "true or false",
    type(None): "null",
}


class TableError(ValueError):
    """A file cannot be read or written as a table, or the output would overwrite a column of
    the input. The message names the file (and the line or row) and says what to change."""


@dataclass(slots=True)
class Table:
    """A plain in-memory table, so that the library call returns something without pandas.

    ``columns`` are in order and distinct; every row has a key for every column, a missing
    value being ``None``.
    """

    columns: list[str]
    rows: list[dict[str, object]]


def read_table(path: Path) -> Table:
    """Read a ``.csv``, ``.jsonl`` / ``.ndjson`` or ``.parquet`` file."""
    reader, _writer = _format(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TableError(f"{path}: cannot read ({exc.strerror})") from None
    return reader(path, data)


def write_table(table: Table, path: Path) -> None:
    """Write ``table`` to ``path`` in the format its extension names, replacing the file only
    once the whole table is written (and synced to disk)."""
    _reader, writer = _format(path)
    partial = path.with_name(f"{path.name}.{secrets.token_hex(4)}.partial")
    try:
        # 0o666 less the umask, as open() would give: a private temporary file (mkstemp's
        # 0o600) would leave the output unreadable to the user's group once renamed.
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(descriptor, "wb") as file:
            writer(table, path, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(partial, path)
    except OSError as exc:
        raise TableError(f"{path}: cannot write ({exc.strerror or exc})") from None
    finally:
        partial.unlink(missing_ok=True)


def check_no_clash(table: Table, added: Sequence[str], *, what: str = "the input") -> None:
    """Refuse a table that already has a column the output adds, rather than overwrite it.

    ``what`` names the table in the message (``tickets.csv``).
    """
    clashes = [column for column in added if column in table.columns]
    if clashes:
        names = ", ".join(f'"{column}"' for column in clashes)
        raise TableError(
            f"{what} already has {'a column' if len(clashes) == 1 else 'columns'} {names}, "
            f"which the output adds; rename {'it' if len(clashes) == 1 else 'them'} in the input"
        )


def cell_text(value: object) -> str:
    """A value as text, for a CSV cell or a prompt: ``None`` is empty, a dict or a list is
    JSON (not Python's repr), anything else ``str()``."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, dict | list):
        return msgspec.json.encode(value).decode()
    return str(value)


_Reader = Callable[[Path, bytes], Table]
_Writer = Callable[[Table, Path, IO[bytes]], None]


def _format(path: Path) -> tuple[_Reader, _Writer]:
    try:
        return _FORMATS[path.suffix.lower()]
    except KeyError:
        supported = ", ".join(_FORMATS)
        raise TableError(
            f"{path}: unknown table format {path.suffix or '(no extension)'}; "
            f"use one of {supported}"
        ) from None


def _check_distinct(columns: Sequence[str], place: str) -> None:
    """Refuse a column named twice: a row, being a dict, would keep only one of them."""
    seen: set[str] = set()
    for column in columns:
        if column in seen:
            raise TableError(f'{place}: column "{column}" appears twice')
        seen.add(column)


def _decode(path: Path, data: bytes) -> str:
    """UTF-8 text, with or without a byte order mark; an error names the line."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise TableError(f"{path}: line {line}: not UTF-8 text; save the file as UTF-8") from None


# CSV


def _read_csv(path: Path, data: bytes) -> Table:
    text = _decode(path, data)
    # The csv module refuses cells over 128 KiB, a guard against runaway quotes; the file is
    # read whole already, and a long article in one cell is ordinary input here.
    limit = csv.field_size_limit()
    csv.field_size_limit(max(limit, len(text)))
    try:
        return _csv_table(path, text)
    finally:
        csv.field_size_limit(limit)


def _csv_table(path: Path, text: str) -> Table:
    records = _csv_records(path, text)
    first = next(records, None)
    if first is None:
        raise TableError(f"{path}: empty file; a CSV needs a header row naming its columns")
    header_line, header = first
    _check_distinct(header, f"{path}: line {header_line}")
    rows: list[dict[str, object]] = []
    for line, record in records:
        if len(record) > len(header):
            raise TableError(
                f"{path}: line {line}: {len(record)} fields, but the header has {len(header)}"
            )
        rows.append(dict(zip_longest(header, record)))
    return Table(header, rows)


def _csv_records(path: Path, text: str) -> Iterator[tuple[int, list[str]]]:
    """Each record that is not a blank line, with the line it starts on (a quoted cell may
    span lines). Strict: a stray or unclosed quote is an error, not a cell that swallows the
    rest of the file."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    while True:
        start = reader.line_num + 1
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise TableError(f"{path}: line {start}: {exc}") from None
        if record:
            yield start, record


def _write_csv(table: Table, path: Path, file: IO[bytes]) -> None:
    text = io.TextIOWrapper(file, encoding="utf-8", newline="")
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(table.columns)
    for row in table.rows:
        writer.writerow([cell_text(row.get(column)) for column in table.columns])
    text.flush()
    text.detach()  # the caller syncs and closes the file


# JSON Lines


def _read_jsonl(path: Path, data: bytes) -> Table:
    objects: list[dict[str, object]] = []
    for number, line in enumerate(data.removeprefix(_BOM).split(b"\n"), start=1):
        if line.strip():
            objects.append(_json_object(path, number, line))
    columns = list(dict.fromkeys(key for item in objects for key in item))
    return Table(columns, [{column: item.get(column) for column in columns} for item in objects])


def _json_object(path: Path, number: int, line: bytes) -> dict[str, object]:
    try:
        value = msgspec.json.decode(line)
    except msgspec.DecodeError as exc:
        raise TableError(f"{path}: line {number}: not JSON ({exc})") from None
    if not isinstance(value, dict):
        kind = _JSON_KINDS.get(type(value), type(value).__name__)
        raise TableError(f"{path}: line {number}: {kind}, not a JSON object")
    return value


def _write_jsonl(table: Table, path: Path, file: IO[bytes]) -> None:
    encoder = msgspec.json.Encoder()
    for number, row in enumerate(table.rows, start=1):
        try:
            line = encoder.encode({column: row.get(column) for column in table.columns})
        except TypeError as exc:
            raise TableError(f"{path}: row {number}: {exc}") from None
        file.write(line + b"\n")


# Parquet


def _pyarrow(path: Path) -> tuple[Any, Any]:
    """pyarrow and pyarrow.parquet, imported only for a Parquet file: the ``run`` extra."""
    try:
        import pyarrow  # type: ignore[import-untyped]
        import pyarrow.parquet  # type: ignore[import-untyped]
    except ImportError:
        raise TableError(f"{path}: {_PYARROW_MISSING}") from None
    return pyarrow, pyarrow.parquet


def _read_parquet(path: Path, data: bytes) -> Table:
    pa, pq = _pyarrow(path)
    try:
        table = pq.read_table(pa.BufferReader(data))
    except (pa.ArrowException, OSError) as exc:
        raise TableError(f"{path}: not a Parquet file we can read ({exc})") from None
    columns: list[str] = list(table.column_names)
    _check_distinct(columns, str(path))
    rows: list[dict[str, object]] = table.to_pylist()
    return Table(columns, rows)


def _write_parquet(table: Table, path: Path, file: IO[bytes]) -> None:
    pa, pq = _pyarrow(path)
    arrays = [_arrow_column(pa, path, table, column) for column in table.columns]
    pq.write_table(pa.Table.from_arrays(arrays, names=table.columns), file)


def _arrow_column(pa: Any, path: Path, table: Table, column: str) -> Any:
    """One column as an Arrow array of the type its values infer; a column with no value
    (all ``None``, or no rows) is typed as strings, which every reader can take."""
    try:
        array = pa.array([row.get(column) for row in table.rows])
    except pa.ArrowException as exc:
        raise TableError(
            f'{path}: column "{column}": {exc}; a Parquet column holds values of one type'
        ) from None
    return array.cast(pa.string()) if pa.types.is_null(array.type) else array


_FORMATS: dict[str, tuple[_Reader, _Writer]] = {
    ".csv": (_read_csv, _write_csv),
    ".jsonl": (_read_jsonl, _write_jsonl),
    ".ndjson": (_read_jsonl, _write_jsonl),
    ".parquet": (_read_parquet, _write_parquet),
}
