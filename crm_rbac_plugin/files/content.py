"""What an upload must be: within the size limit, of an allowed type, safely named.

The type is decided by the bytes, not by the name or the browser's header:
:func:`sniff` matches each allowed type's signature (magic bytes), and a
text type must decode as UTF-8 without NUL bytes. A file whose bytes match
no allowed type is refused whatever it is called, so an HTML page renamed
``invoice.pdf`` is never stored, let alone served. The name a user gave is
kept for display only, reduced to safe characters; the bytes are stored
under a generated key (:mod:`.storage`), so no name reaches a path.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import IO

from ..config import setting
from ..errors import ValidationError

#: Signatures of the binary types the plugin can recognise: type -> (offset, bytes) pairs,
#: any of which identifies it.
SIGNATURES: dict[str, tuple[tuple[int, bytes], ...]] = {
    "application/pdf": ((0, b"%PDF-"),),
    "image/png": ((0, b"\x89PNG\r\n\x1a\n"),),
    "image/jpeg": ((0, b"\xff\xd8\xff"),),
    "image/gif": ((0, b"GIF87a"), (0, b"GIF89a")),
    "image/webp": ((8, b"WEBP"),),
}
#: Types recognised as text: valid UTF-8 with no NUL byte.
TEXT_TYPES = frozenset({"text/plain", "text/csv"})
#: The extension a type's display name ends with when the given one does not fit.
EXTENSIONS: dict[str, tuple[str, ...]] = {
    "application/pdf": (".pdf",), "image/png": (".png",), "image/jpeg": (".jpg", ".jpeg"),
    "image/gif": (".gif",), "image/webp": (".webp",), "text/plain": (".txt", ".log", ".md"),
    "text/csv": (".csv",),
}
#: Longest display name kept, in characters (the column holds 255).
MAX_NAME = 120


class FileRejected(ValidationError):
    """An upload that cannot be stored: 400 naming the field, or 413 when too large."""

    def __init__(self, message: str, *, field: str = "file", status: int = 400) -> None:
        super().__init__(message, field=field)
        self.status = status


@dataclass(frozen=True)
class CheckedUpload:
    """An upload that passed every check: its bytes, sniffed type and display name."""

    data: bytes
    content_type: str
    filename: str


def sniff(data: bytes, allowed: Iterable[str], name: str | None = None) -> str | None:
    """Return the allowed type ``data`` is, judged by its bytes, or None.

    Text is what carries no binary signature, no NUL byte and decodes as
    UTF-8; ``name`` only chooses between the two text types (``.csv``).
    """
    allowed = set(allowed)
    for content_type, sigs in SIGNATURES.items():
        if any(data[off:off + len(sig)] == sig for off, sig in sigs):
            return content_type if content_type in allowed else None
    if b"\x00" in data or not _is_utf8(data):
        return None
    if "text/csv" in allowed and (name or "").lower().endswith(".csv"):
        return "text/csv"
    return "text/plain" if "text/plain" in allowed else None


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def safe_filename(name: str | None, content_type: str) -> str:
    """``name`` reduced to letters, digits, ``.-_`` and spaces, with an extension of its type.

    Letters and digits are those of any script ("契約書.pdf", "Angebot
    Müller.pdf" keep their names): the name is only displayed and sent in
    ``Content-Disposition``'s ``filename*`` (UTF-8), never used as a path.
    Directory parts, control and format characters (a right-to-left override
    could disguise the extension), punctuation, leading dots and anything a
    shell or header could read specially go; an empty result becomes
    ``file``. The extension is the type's own, so a saved file opens as what
    it is.
    """
    base = os.path.basename((name or "").replace("\\", "/"))
    base = unicodedata.normalize("NFKC", base)
    base = re.sub(r"[^\w.\- ]+", "_", base).strip(" ._") or "file"
    stem, ext = os.path.splitext(base)
    wanted = EXTENSIONS.get(content_type, ())
    if ext.lower() not in wanted:
        stem, ext = base, (wanted[0] if wanted else "")
    stem = stem[:MAX_NAME - len(ext)].rstrip(" .") or "file"
    return f"{stem}{ext.lower()}"


def read_limited(stream: IO[bytes], limit: int) -> bytes:
    """Read at most ``limit`` bytes; one more byte available means too large (413)."""
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise FileRejected(f"The file is larger than {limit} bytes.", status=413)
    return data


def checked_upload(stream: IO[bytes] | None, name: str | None, *, field: str = "file") -> CheckedUpload:
    """Check an upload against ``RBAC_FILES_MAX_BYTES`` and ``RBAC_FILES_ALLOWED_TYPES``.

    Raises :class:`FileRejected`: 413 over the size limit, 400 naming
    ``field`` for no file, an empty one or a type the bytes do not show.
    """
    if stream is None:
        raise FileRejected("Choose a file to upload.", field=field)
    data = read_limited(stream, int(setting("RBAC_FILES_MAX_BYTES")))
    if not data:
        raise FileRejected("The file is empty.", field=field)
    content_type = sniff(data, setting("RBAC_FILES_ALLOWED_TYPES"), name)
    if content_type is None:
        allowed = ", ".join(sorted(setting("RBAC_FILES_ALLOWED_TYPES")))
        raise FileRejected(f"This type of file is not allowed (allowed: {allowed}).", field=field)
    return CheckedUpload(data, content_type, safe_filename(name, content_type))
