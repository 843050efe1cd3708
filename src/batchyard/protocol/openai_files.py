"""OpenAI's Files API on the wire (``/v1/files``): the objects, and the upload form's fields.

The objects are the official SDK's ``FileObject``, ``FileDeleted`` and the cursor page it
reads (``openai.types``, ``openai.pagination.SyncCursorPage``), every field present (a
``None`` is sent as ``null``, as OpenAI does). Times are unix seconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import msgspec

from batchyard.errors import ApiError

#: Purposes an upload may have: batch input, and OpenAI's catch-all. The others OpenAI takes
#: (``assistants``, ``fine-tune``, ``vision``, ``evals``) belong to APIs batchyard lacks.
UPLOAD_PURPOSES = ("batch", "user_data")
#: OpenAI keeps a ``batch`` upload 30 days unless told otherwise; other files until deleted.
BATCH_FILE_SECONDS = 30 * 24 * 3600
#: ``expires_after.seconds``: between an hour and 30 days, as OpenAI takes it.
EXPIRES_AFTER_SECONDS = (3600, 30 * 24 * 3600)
#: The form fields besides the ``file`` part: ``expires_after`` comes as the SDKs nest an
#: object in a form, with bracketed keys.
_ANCHOR = "expires_after[anchor]"
_SECONDS = "expires_after[seconds]"
UPLOAD_FIELDS = frozenset({"purpose", _ANCHOR, _SECONDS})


class FileObject(msgspec.Struct):
    id: str
    bytes: int
    created_at: int
    filename: str
    purpose: str
    #: ``uploaded``, ``processed`` or ``error`` (deprecated by OpenAI); ours are processed.
    status: str
    expires_at: int | None
    status_details: str | None = None
    object: Literal["file"] = "file"


class FileList(msgspec.Struct):
    data: list[FileObject]
    first_id: str | None
    last_id: str | None
    has_more: bool
    object: Literal["list"] = "list"


class FileDeleted(msgspec.Struct):
    id: str
    deleted: bool = True
    object: Literal["file"] = "file"


class UploadFields(msgspec.Struct, frozen=True):
    """The upload form's fields, checked: ``expires_after`` in seconds (``None``: the
    purpose's default)."""

    purpose: str
    expires_after: int | None


def parse_upload_fields(fields: Mapping[str, str]) -> UploadFields:
    """Check the form's fields (all but the ``file`` part), naming the one at fault as
    OpenAI's ``param``."""
    for name in fields:
        if name not in UPLOAD_FIELDS:
            raise _invalid(name, f"Unrecognized request argument supplied: {name}")
    purpose = fields.get("purpose")
    if purpose is None:
        raise _invalid("purpose", "purpose: this field is required")
    if purpose not in UPLOAD_PURPOSES:
        raise _invalid(
            "purpose",
            f"purpose: {purpose!r} is not supported here; use one of "
            + ", ".join(repr(p) for p in UPLOAD_PURPOSES),
        )
    if _ANCHOR not in fields and _SECONDS not in fields:
        return UploadFields(purpose=purpose, expires_after=None)
    anchor = fields.get(_ANCHOR)
    if anchor != "created_at":
        raise _invalid(
            "expires_after.anchor", f"expires_after.anchor: must be 'created_at', not {anchor!r}"
        )
    low, high = EXPIRES_AFTER_SECONDS
    seconds = fields.get(_SECONDS, "")
    if not seconds.isdigit() or not low <= int(seconds) <= high:
        raise _invalid(
            "expires_after.seconds",
            f"expires_after.seconds: must be an integer from {low} to {high}, not {seconds!r}",
        )
    return UploadFields(purpose=purpose, expires_after=int(seconds))


def _invalid(param: str, message: str) -> ApiError:
    return ApiError("invalid_request_error", message, param=param)
