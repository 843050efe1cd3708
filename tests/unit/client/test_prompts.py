"""Prompt templates and custom_ids: a template reads plain columns only and is checked against
the table before anything is sent; ids fit the API's pattern and two rows never share one."""

from __future__ import annotations

from pathlib import Path

import pytest

from batchyard.client.prompts import RowError, Template, TemplateError, custom_ids, load_text
from batchyard.client.tables import Table


def test_render_fills_fields_by_column_name() -> None:
    template = Template.parse("Title: {Ticket Title}\n{body} ({body})")
    assert template.fields == ("Ticket Title", "body")
    row = {"Ticket Title": "Crash", "body": "It crashes.", "unused": 1}
    assert template.render(row) == "Title: Crash\nIt crashes. (It crashes.)"


def test_render_writes_none_as_empty_and_other_values_as_text() -> None:
    template = Template.parse("[{a}|{b}|{c}|{d}]")
    assert template.render({"a": None, "b": 42, "c": {"k": "v"}, "d": 1.5}) == '[|42|{"k":"v"}|1.5]'


def test_doubled_braces_are_literal_and_not_fields() -> None:
    template = Template.parse('Answer as {{"category": ...}} for {ticket}}}')
    assert template.fields == ("ticket",)
    assert template.render({"ticket": "T"}) == 'Answer as {"category": ...} for T}'


def test_a_template_without_fields_renders_as_itself() -> None:
    template = Template.parse("Say hi.")
    assert template.fields == ()
    assert template.render({}) == "Say hi."


@pytest.mark.parametrize(
    ("text", "shown", "problem"),
    [
        ("{a.b}", "{a.b}", "attribute and index lookups"),
        ("{a[0]}", "{a[0]}", "attribute and index lookups"),
        ("x {} y", "{}", "positional fields"),
        ("{0}", "{0}", "positional fields"),
        ("{x!r}", "{x!r}", "conversions (!r)"),
        ("{x:>10}", "{x:>10}", "format specs (:>10)"),
        ("{x!s:>10}", "{x!s:>10}", "conversions (!s)"),
    ],
)
def test_fields_other_than_plain_names_are_refused_by_name(
    text: str, shown: str, problem: str
) -> None:
    with pytest.raises(TemplateError) as caught:
        Template.parse(f"ok {{fine}} {text}", name="--prompt")
    message = str(caught.value)
    assert message.startswith(f"--prompt: {shown}: {problem}")
    assert "write {{ and }} for literal braces" in message


@pytest.mark.parametrize("text", ["{ticket", "a } b", "{x!}"])
def test_unbalanced_braces_are_refused(text: str) -> None:
    with pytest.raises(TemplateError, match=r"^the template: .*write \{\{ and \}\}"):
        Template.parse(text)


def test_check_columns_names_the_missing_field_and_the_columns() -> None:
    template = Template.parse("{id}: {tickt}", name="--prompt")
    template.check_columns(["id", "tickt"], "x.csv")
    with pytest.raises(TemplateError) as caught:
        template.check_columns(["id", "ticket"], "tickets.csv")
    assert str(caught.value) == (
        "--prompt uses {tickt}, which is not a column of tickets.csv (columns: id, ticket)"
    )


def test_check_columns_names_every_missing_field_once() -> None:
    template = Template.parse("{a} {b} {a} {c} {d}")
    with pytest.raises(TemplateError) as caught:
        template.check_columns(["b"], "in.jsonl")
    assert str(caught.value) == (
        "the template uses {a}, {c} and {d}, which are not columns of in.jsonl (columns: b)"
    )


def test_load_text_reads_an_at_file_and_passes_anything_else_through(tmp_path: Path) -> None:
    path = tmp_path / "prompt.txt"
    path.write_bytes(b"\xef\xbb\xbfClassify: {ticket}\n")
    assert load_text(f"@{path}") == "Classify: {ticket}\n"
    assert load_text("Classify: {ticket}") == "Classify: {ticket}"
    assert load_text("a@b") == "a@b"
    assert load_text("") == ""


def test_load_text_double_at_is_a_literal_at(tmp_path: Path) -> None:
    (tmp_path / "handle").write_text("file", encoding="utf-8")
    assert load_text(f"@@{tmp_path / 'handle'}") == f"@{tmp_path / 'handle'}"
    assert load_text("@@") == "@"


def test_load_text_missing_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "promt.txt"
    with pytest.raises(TemplateError) as caught:
        load_text(f"@{path}")
    assert str(caught.value) == f"{path}: no such file (@ names a file; write @@ for a literal @)"


def test_load_text_refuses_a_bare_at_a_directory_and_non_utf8(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="@ names no file"):
        load_text("@")
    with pytest.raises(TemplateError, match=rf"^{tmp_path}: cannot read \(Is a directory\)"):
        load_text(f"@{tmp_path}")
    latin = tmp_path / "latin.txt"
    latin.write_bytes("café".encode("latin-1"))
    with pytest.raises(TemplateError, match=r"latin\.txt: not UTF-8 text"):
        load_text(f"@{latin}")


def table(values: list[object]) -> Table:
    return Table(["id", "ticket"], [{"id": value, "ticket": "t"} for value in values])


def test_custom_ids_without_a_column_are_row_numbers_from_one() -> None:
    assert custom_ids(table(["x", "x", None]), None) == ["1", "2", "3"]
    assert custom_ids(Table(["id"], []), None) == []


def test_custom_ids_are_sanitized_and_cut_to_64_characters() -> None:
    values: list[object] = ["ok-ID_9", "a/b c", "café", 12, "x" * 70, "日本"]
    assert custom_ids(table(values), "id") == ["ok-ID_9", "a_b_c", "caf_", "12", "x" * 64, "__"]


def test_missing_id_column_lists_the_columns() -> None:
    with pytest.raises(RowError) as caught:
        custom_ids(table(["a"]), "ticket_id", what="tickets.csv")
    assert str(caught.value) == (
        "--id-column ticket_id is not a column of tickets.csv (columns: id, ticket)"
    )


@pytest.mark.parametrize("empty", [None, "", "  "])
def test_an_empty_id_names_its_row(empty: object) -> None:
    with pytest.raises(RowError, match=r"^--id-column id: row 3 is empty"):
        custom_ids(table(["a", "b", empty, "d"]), "id")


def test_ids_that_collide_after_sanitizing_are_refused_with_rows_and_raw_values() -> None:
    values: list[object] = ["ok", "x", "a/b", "y", "z", "w", "v", "u", "a b"]
    with pytest.raises(RowError) as caught:
        custom_ids(table(values), "id")
    assert str(caught.value) == (
        '--id-column id: rows 3 and 9 both give custom_id "a_b" (from "a/b" and "a b")'
    )


def test_truncation_collisions_and_exact_duplicates_are_refused() -> None:
    long = "p" * 64
    with pytest.raises(RowError) as caught:
        custom_ids(table([long + "1", "same", long + "2", "same", "same"]), "id")
    assert str(caught.value) == (
        f'--id-column id: rows 1 and 3 both give custom_id "{long}" '
        f'(from "{long}1" and "{long}2"); '
        'rows 2, 4 and 5 all give custom_id "same" (from "same", "same" and "same")'
    )


def test_many_collisions_show_the_first_few() -> None:
    values: list[object] = [f"{letter}{mark}" for letter in "abcde" for mark in "?!"]
    values += ["z"] * 7
    with pytest.raises(RowError) as caught:
        custom_ids(table(values), "id")
    message = str(caught.value)
    assert message.startswith(
        '--id-column id: rows 1 and 2 both give custom_id "a_" (from "a?" and "a!"); '
        'rows 3 and 4 both give custom_id "b_"'
    )
    assert message.endswith("; and 3 more")
    assert "z" not in message


def test_a_big_collision_shows_the_first_rows() -> None:
    with pytest.raises(RowError) as caught:
        custom_ids(table(["same"] * 8), "id")
    assert str(caught.value).startswith(
        '--id-column id: rows 1, 2, 3, 4, 5 and 3 more all give custom_id "same"'
    )


def test_raw_values_are_quoted_so_quotes_and_commas_stay_readable() -> None:
    with pytest.raises(RowError) as caught:
        custom_ids(table(['say "hi", ok', "say _hi__ ok"]), "id")
    assert r'(from "say \"hi\", ok" and "say _hi__ ok")' in str(caught.value)
