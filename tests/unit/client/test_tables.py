"""Tables in and out of ``batchyard run``: each format round-trips, reading tolerates what real
files hold (a BOM, quoted newlines, blank lines, ragged JSON objects), every refusal names the
file and the line or row, and a write replaces the output only once complete."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]
import pytest

from batchyard.client.tables import (
    Table,
    TableError,
    cell_text,
    check_no_clash,
    read_table,
    write_table,
)

TRICKY = 'naïve café, 日本語 🙂\n"quoted", line two\r\nend'


def test_csv_round_trips_strings_with_commas_quotes_newlines_and_unicode(tmp_path: Path) -> None:
    table = Table(["id", "ticket"], [{"id": "1", "ticket": TRICKY}, {"id": "2", "ticket": ""}])
    write_table(table, tmp_path / "out.csv")
    assert read_table(tmp_path / "out.csv") == table


def test_csv_writes_none_empty_containers_as_json_and_other_values_as_str(tmp_path: Path) -> None:
    table = Table(
        ["a", "b", "c", "d"],
        [
            {"a": None, "b": {"k": [1, "é"]}, "c": 3, "d": True},
            {"a": 1.5, "b": [], "c": "x", "d": None},
        ],
    )
    write_table(table, tmp_path / "out.csv")
    assert (tmp_path / "out.csv").read_text(encoding="utf-8") == (
        'a,b,c,d\n,"{""k"":[1,""é""]}",3,True\n1.5,[],x,\n'
    )


def test_csv_reads_a_bom_crlf_and_skips_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "excel.csv"
    path.write_bytes(b'\xef\xbb\xbfid,ticket\r\n\r\n7,"two\r\nlines"\r\n8,caf\xc3\xa9\r\n')
    assert read_table(path) == Table(
        ["id", "ticket"], [{"id": "7", "ticket": "two\r\nlines"}, {"id": "8", "ticket": "café"}]
    )


def test_csv_short_rows_get_none_and_empty_cells_stay_empty_strings(tmp_path: Path) -> None:
    path = tmp_path / "ragged.csv"
    path.write_text("a,b,c\n1\n,,\n", encoding="utf-8")
    assert read_table(path).rows == [
        {"a": "1", "b": None, "c": None},
        {"a": "", "b": "", "c": ""},
    ]


def test_csv_with_a_header_only_has_no_rows(tmp_path: Path) -> None:
    path = tmp_path / "header.csv"
    path.write_text("id,ticket\n", encoding="utf-8")
    assert read_table(path) == Table(["id", "ticket"], [])


@pytest.mark.parametrize("content", ["", "\n\n"])
def test_csv_without_a_header_is_refused(tmp_path: Path, content: str) -> None:
    path = tmp_path / "tickets.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(TableError, match=r"tickets\.csv: empty file; a CSV needs a header row"):
        read_table(path)


def test_csv_row_with_more_fields_than_the_header_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "tickets.csv"
    # The second row starts on line 3 (its quoted cell spans two lines), the third on line 5.
    path.write_text('id,ticket\n1,"a\nb"\n2,c\n3,d,extra\n', encoding="utf-8")
    with pytest.raises(TableError) as caught:
        read_table(path)
    assert str(caught.value).endswith("tickets.csv: line 5: 3 fields, but the header has 2")


def test_csv_unclosed_quote_is_refused_at_the_line_it_opens(tmp_path: Path) -> None:
    path = tmp_path / "tickets.csv"
    path.write_text('id,ticket\n1,ok\n2,"never closed\n3,more\n', encoding="utf-8")
    with pytest.raises(TableError, match=r"tickets\.csv: line 3: unexpected end of data"):
        read_table(path)


def test_csv_repeated_header_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "tickets.csv"
    path.write_text("id,ticket,id\n1,a,2\n", encoding="utf-8")
    with pytest.raises(TableError, match=r'tickets\.csv: line 1: column "id" appears twice'):
        read_table(path)


def test_non_utf8_is_refused_naming_the_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes("id,ticket\n1,ok\n2,café\n".encode("latin-1"))
    with pytest.raises(TableError, match=r"latin1\.csv: line 3: not UTF-8 text"):
        read_table(path)


def test_jsonl_round_trips_types_unicode_and_column_order(tmp_path: Path) -> None:
    table = Table(
        ["z", "a", "nested"],
        [
            {"z": 1, "a": TRICKY, "nested": {"k": [1, None]}},
            {"z": None, "a": "x", "nested": 2.5},
        ],
    )
    write_table(table, tmp_path / "out.jsonl")
    lines = (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()
    assert lines[1] == '{"z":null,"a":"x","nested":2.5}'
    assert read_table(tmp_path / "out.jsonl") == table


def test_jsonl_columns_are_the_union_of_keys_in_first_seen_order(tmp_path: Path) -> None:
    path = tmp_path / "ragged.ndjson"
    path.write_bytes(b'\xef\xbb\xbf{"b": 1, "a": 2}\n\n   \r\n{"c": 3, "a": 4}\r\n')
    assert read_table(path) == Table(
        ["b", "a", "c"], [{"b": 1, "a": 2, "c": None}, {"b": None, "a": 4, "c": 3}]
    )


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("[1, 2]", "line 3: an array, not a JSON object"),
        ('"text"', "line 3: a string, not a JSON object"),
        ("null", "line 3: null, not a JSON object"),
        ('{"id": 3,}', "line 3: not JSON"),
    ],
)
def test_jsonl_line_that_is_not_an_object_is_refused_by_number(
    tmp_path: Path, line: str, message: str
) -> None:
    path = tmp_path / "tickets.jsonl"
    path.write_text(f'{{"id": 1}}\n\n{line}\n{{"id": 4}}\n', encoding="utf-8")
    with pytest.raises(TableError) as caught:
        read_table(path)
    assert str(caught.value).startswith(f"{path}: {message}")


def test_jsonl_value_that_cannot_be_encoded_names_the_row(tmp_path: Path) -> None:
    table = Table(["id"], [{"id": 1}, {"id": object()}])
    with pytest.raises(TableError, match=r"out\.jsonl: row 2: .*object"):
        write_table(table, tmp_path / "out.jsonl")
    assert list(tmp_path.iterdir()) == []


def test_parquet_round_trips_ints_strings_none_and_all_none_columns(tmp_path: Path) -> None:
    table = Table(
        ["n", "text", "empty"],
        [
            {"n": 1, "text": TRICKY, "empty": None},
            {"n": None, "text": None, "empty": None},
            {"n": 2**40, "text": "x", "empty": None},
        ],
    )
    write_table(table, tmp_path / "out.parquet")
    assert read_table(tmp_path / "out.parquet") == table
    schema = pq.read_schema(tmp_path / "out.parquet")
    assert schema.names == ["n", "text", "empty"]
    assert schema.field("n").type == pa.int64()
    assert schema.field("empty").type == pa.string()


def test_parquet_with_no_rows_still_has_its_columns(tmp_path: Path) -> None:
    write_table(Table(["id", "answer"], []), tmp_path / "out.parquet")
    assert read_table(tmp_path / "out.parquet") == Table(["id", "answer"], [])


def test_parquet_reads_what_pyarrow_wrote(tmp_path: Path) -> None:
    path = tmp_path / "in.parquet"
    pq.write_table(pa.table({"id": [3, 4], "score": [0.5, None], "tags": [["a"], []]}), path)
    assert read_table(path) == Table(
        ["id", "score", "tags"],
        [{"id": 3, "score": 0.5, "tags": ["a"]}, {"id": 4, "score": None, "tags": []}],
    )


def test_parquet_column_of_mixed_types_is_refused_naming_it(tmp_path: Path) -> None:
    table = Table(["id", "mixed"], [{"id": 1, "mixed": 1}, {"id": 2, "mixed": "two"}])
    with pytest.raises(TableError, match=r'out\.parquet: column "mixed": .*one type'):
        write_table(table, tmp_path / "out.parquet")


def test_a_file_that_is_not_parquet_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "fake.parquet"
    path.write_text("id,ticket\n", encoding="utf-8")
    with pytest.raises(TableError, match=r"fake\.parquet: not a Parquet file"):
        read_table(path)


def test_parquet_without_pyarrow_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # makes `import pyarrow` fail
    with pytest.raises(TableError, match=r"pip install 'batchyard\[run\]'"):
        write_table(Table(["id"], [{"id": 1}]), tmp_path / "out.parquet")
    assert list(tmp_path.iterdir()) == []


def test_extension_is_case_insensitive(tmp_path: Path) -> None:
    table = Table(["id"], [{"id": "1"}])
    write_table(table, tmp_path / "OUT.CSV")
    assert (tmp_path / "OUT.CSV").read_text(encoding="utf-8") == "id\n1\n"
    assert read_table(tmp_path / "OUT.CSV") == table


@pytest.mark.parametrize("name", ["tickets.xlsx", "tickets"])
def test_unknown_extension_lists_the_supported_ones(tmp_path: Path, name: str) -> None:
    expected = r"use one of \.csv, \.jsonl, \.ndjson, \.parquet"
    with pytest.raises(TableError, match=rf"{name}: unknown table format .*{expected}"):
        read_table(tmp_path / name)
    with pytest.raises(TableError, match=expected):
        write_table(Table(["id"], []), tmp_path / name)
    assert list(tmp_path.iterdir()) == []


def test_missing_input_is_a_table_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(TableError, match=r"nowhere\.csv: cannot read \(No such file"):
        read_table(tmp_path / "nowhere.csv")


def test_write_into_a_missing_directory_is_a_table_error(tmp_path: Path) -> None:
    with pytest.raises(TableError, match=r"out\.csv: cannot write \(No such file"):
        write_table(Table(["id"], []), tmp_path / "missing" / "out.csv")


def test_failed_write_keeps_the_old_output_and_leaves_no_partial_file(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    path.write_text('{"id":"old"}\n', encoding="utf-8")
    with pytest.raises(TableError):
        write_table(Table(["id"], [{"id": "new"}, {"id": object()}]), path)
    assert path.read_text(encoding="utf-8") == '{"id":"old"}\n'
    assert list(tmp_path.iterdir()) == [path]


def test_write_replaces_an_existing_file_with_the_umask_s_permissions(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    path.write_text("stale\n", encoding="utf-8")
    old_umask = os.umask(0o022)
    try:
        write_table(Table(["id"], [{"id": "fresh"}]), path)
    finally:
        os.umask(old_umask)
    assert path.read_text(encoding="utf-8") == "id\nfresh\n"
    assert path.stat().st_mode & 0o777 == 0o644
    assert list(tmp_path.iterdir()) == [path]


def test_check_no_clash_names_the_columns_to_rename() -> None:
    table = Table(["id", "answer", "error"], [])
    check_no_clash(table, ["stop_reason"])
    with pytest.raises(TableError) as caught:
        check_no_clash(table, ["answer", "stop_reason"], what="tickets.csv")
    assert str(caught.value) == (
        'tickets.csv already has a column "answer", which the output adds; rename it in the input'
    )
    with pytest.raises(TableError, match=r'columns "answer", "error", .*rename them'):
        check_no_clash(table, ["answer", "error"])


@pytest.mark.parametrize(
    ("value", "text"),
    [(None, ""), ("x", "x"), (3, "3"), (False, "False"), ({"a": [1]}, '{"a":[1]}'), ([], "[]")],
)
def test_cell_text(value: object, text: str) -> None:
    assert cell_text(value) == text


def test_a_csv_cell_longer_than_the_csv_modules_default_limit_is_read(tmp_path: Path) -> None:
    article = "word " * 60_000  # 300 kB in one cell; the csv module's own limit is 128 KiB
    path = tmp_path / "articles.csv"
    write_table(Table(["slug", "body"], [{"slug": "a", "body": article}]), path)
    assert read_table(path).rows == [{"slug": "a", "body": article}]
