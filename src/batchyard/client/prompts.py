"""From rows to requests: a prompt template filled from each row, and each row's ``custom_id``.

A template is Python's ``str.format`` syntax cut down to plain column names: ``{ticket}`` or
``{Ticket Title}`` is the row's value in that column, ``{{`` and ``}}`` are literal braces.
Attribute and index lookups, positional fields, conversions and format specs are refused, so a
template can only read columns, and a typo is caught against the table's columns before a
request is sent (:meth:`Template.check_columns`).

Rows are numbered from 1 in the order read; without ``--id-column``, a row's number is its
``custom_id``.

Every failure is a ``ValueError``, one class per kind of input at fault:

```
ValueError
 ├── TableError ...... (tables.py) a file is not a table we can read or write, or the output
 │                     would overwrite one of its columns
 ├── TemplateError ... a template is malformed, uses a field that is not a column, or the
 │                     ``@file`` it is read from cannot be read
 └── RowError ........ the rows cannot be given distinct custom_ids: the ``--id-column``
                       is missing, a row's value is empty, or two rows give the same id
```
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from batchyard.client.tables import Table, cell_text

#: What the Message Batches API allows in a ``custom_id``.
CUSTOM_ID_MAX = 64
_NOT_ID_CHARACTER = re.compile(r"[^a-zA-Z0-9_-]")
_COLLISIONS_SHOWN = 3
_ROWS_SHOWN = 5


class TemplateError(ValueError):
    """A template is malformed, uses a field that is not a column, or its ``@file`` cannot be
    read."""


class RowError(ValueError):
    """The rows cannot be given distinct custom_ids."""


@dataclass(frozen=True, slots=True)
class Template:
    """A parsed template: literal text, each piece followed by the field after it (``None``
    after the last). Build it with :meth:`parse`."""

    name: str
    pieces: tuple[tuple[str, str | None], ...]

    @classmethod
    def parse(cls, text: str, *, name: str = "the template") -> Template:
        """Parse ``text``; ``name`` is how messages call it (``--prompt``)."""
        try:
            parsed = list(string.Formatter().parse(text))
        except ValueError as exc:
            raise TemplateError(f"{name}: {exc}; write {{{{ and }}}} for literal braces") from None
        for _literal, field, spec, conversion in parsed:
            if field is not None:
                _check_field(name, field, spec, conversion)
        return cls(name, tuple((literal, field) for literal, field, _spec, _conv in parsed))

    @property
    def fields(self) -> tuple[str, ...]:
        """The columns the template uses, each once, in order of first use."""
        return tuple(dict.fromkeys(field for _literal, field in self.pieces if field is not None))

    def check_columns(self, columns: Sequence[str], what: str) -> None:
        """Refuse a template that uses a field the table (called ``what``) has no column for,
        naming every such field and the columns there are."""
        missing = [field for field in self.fields if field not in columns]
        if not missing:
            return
        uses = _and([f"{{{field}}}" for field in missing])
        which = "which is not a column" if len(missing) == 1 else "which are not columns"
        raise TemplateError(
            f"{self.name} uses {uses}, {which} of {what} (columns: {', '.join(columns)})"
        )

    def render(self, row: Mapping[str, object]) -> str:
        """The template filled from ``row`` (a value as :func:`~batchyard.client.tables.cell_text`:
        ``None`` is empty). Every field must be a key of ``row``: check the columns first."""
        return "".join(
            literal if field is None else literal + cell_text(row[field])
            for literal, field in self.pieces
        )


def _check_field(name: str, field: str, spec: str | None, conversion: str | None) -> None:
    """Refuse anything but a plain column name between braces."""
    if field == "" or field.isdigit():
        problem = "positional fields are not supported; name a column"
    elif "." in field or "[" in field:
        problem = "attribute and index lookups are not supported; name a column"
    elif conversion is not None:
        problem = f"conversions (!{conversion}) are not supported"
    elif spec:
        problem = f"format specs (:{spec}) are not supported"
    else:
        return
    shown = field + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "")
    raise TemplateError(f"{name}: {{{shown}}}: {problem} (write {{{{ and }}}} for literal braces)")


def load_text(argument: str) -> str:
    """A command-line text: ``@path`` is the UTF-8 file's content (as is, final newline
    included), ``@@text`` the literal ``@text``, anything else the argument itself."""
    if not argument.startswith("@") or argument.startswith("@@"):
        return argument.removeprefix("@")
    if argument == "@":
        raise TemplateError("@ names no file; write @@ for a literal @")
    path = Path(argument[1:]).expanduser()
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise TemplateError(
            f"{path}: no such file (@ names a file; write @@ for a literal @)"
        ) from None
    except OSError as exc:
        raise TemplateError(f"{path}: cannot read ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise TemplateError(f"{path}: not UTF-8 text; save the file as UTF-8") from None


def custom_ids(table: Table, id_column: str | None, *, what: str = "the input") -> list[str]:
    """Each row's ``custom_id``: its number (from ``"1"``) without ``id_column``, else its
    value there made fit for the API: every character outside ``[a-zA-Z0-9_-]`` replaced by
    ``_``, cut to 64. Two rows giving the same id are refused here, before anything is sent,
    since results are matched to rows by id. ``what`` names the table in messages.
    """
    if id_column is None:
        return [str(number) for number in range(1, len(table.rows) + 1)]
    if id_column not in table.columns:
        raise RowError(
            f"--id-column {id_column} is not a column of {what} "
            f"(columns: {', '.join(table.columns)})"
        )
    values = [row[id_column] for row in table.rows]
    ids = [_custom_id(id_column, number, value) for number, value in enumerate(values, start=1)]
    _check_unique(id_column, ids, values)
    return ids


def _custom_id(id_column: str, number: int, value: object) -> str:
    text = cell_text(value)
    if not text.strip():
        raise RowError(f"--id-column {id_column}: row {number} is empty; every row needs an id")
    return _NOT_ID_CHARACTER.sub("_", text)[:CUSTOM_ID_MAX]


def _check_unique(id_column: str, ids: list[str], values: list[object]) -> None:
    """Refuse ids that two rows share, naming the first few with their rows and raw values."""
    rows_by_id: dict[str, list[int]] = {}
    for number, custom_id in enumerate(ids, start=1):
        rows_by_id.setdefault(custom_id, []).append(number)
    collisions = [(custom_id, rows) for custom_id, rows in rows_by_id.items() if len(rows) > 1]
    if not collisions:
        return
    described = [
        _collision(custom_id, rows, values) for custom_id, rows in collisions[:_COLLISIONS_SHOWN]
    ]
    more = len(collisions) - _COLLISIONS_SHOWN
    if more > 0:
        described.append(f"and {more} more")
    raise RowError(f"--id-column {id_column}: " + "; ".join(described))


def _collision(custom_id: str, rows: list[int], values: list[object]) -> str:
    """``rows 3 and 9 both give custom_id "a_b" (from "a/b" and "a b")``."""
    shown = rows[:_ROWS_SHOWN]
    numbers = [str(number) for number in shown]
    sources = [json.dumps(cell_text(values[number - 1]), ensure_ascii=False) for number in shown]
    if len(rows) > _ROWS_SHOWN:
        numbers.append(f"{len(rows) - _ROWS_SHOWN} more")
    verb = "both give" if len(rows) == 2 else "all give"
    return f"rows {_and(numbers)} {verb} custom_id {json.dumps(custom_id)} (from {_and(sources)})"


def _and(items: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"
