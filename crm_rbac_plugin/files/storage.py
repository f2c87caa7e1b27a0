"""Where attachment bytes live: a small interface and its local-disk implementation.

:class:`Storage` is three methods (``put``, ``open``, ``delete``) keyed by
the generated storage key, never by a name a user chose, so no upload can
name a path. :class:`LocalStorage` writes under one directory
(``RBAC_FILES_DIR``, default ``<instance path>/rbac_files``), two levels of
fan-out by key. Production on several machines sets ``RBAC_FILES_STORAGE``
to an object of its own with the same three methods, for example over an
S3-compatible bucket (README, "Files").
"""

from __future__ import annotations

import os
import re
import tempfile
from typing import IO, Protocol, runtime_checkable

from flask import current_app

from ..config import setting
from ..errors import ConfigurationError

#: What a generated key looks like: 32 lowercase hex digits.
KEY_PATTERN = re.compile(r"^[0-9a-f]{32}$")


@runtime_checkable
class Storage(Protocol):
    """Bytes keyed by a generated key."""

    def put(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key`` (a new key: never overwrites another file)."""

    def open(self, key: str) -> IO[bytes]:
        """Return a binary file object reading the bytes under ``key``.

        Raises :class:`FileNotFoundError` when there are none.
        """

    def delete(self, key: str) -> None:
        """Remove the bytes under ``key``; a missing key is not an error."""


class LocalStorage:
    """Files under ``root``, at ``root/ab/cd/abcd...`` for key ``abcd...``.

    Writes go to a temporary file renamed into place, so a reader never
    sees half a file. A key that is not 32 hex digits is refused: the path
    is built from the key alone.
    """

    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)

    def path(self, key: str) -> str:
        """The file of ``key``; refuses anything but a generated key."""
        if not KEY_PATTERN.match(key):
            raise ValueError("not a storage key")
        return os.path.join(self.root, key[:2], key[2:4], key)

    def put(self, key: str, data: bytes) -> None:
        target = self.path(key)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(target), prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(tmp, target)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def open(self, key: str) -> IO[bytes]:
        return open(self.path(key), "rb")  # the caller closes it

    def delete(self, key: str) -> None:
        try:
            os.unlink(self.path(key))
        except FileNotFoundError:
            pass


def storage() -> Storage:
    """The current app's storage: ``RBAC_FILES_STORAGE``, else local disk.

    The local storage is built once per app and kept in the extension's
    state (not in a module global), so several apps keep their own roots.
    """
    configured = setting("RBAC_FILES_STORAGE")
    if configured is not None:
        if not isinstance(configured, Storage):
            raise ConfigurationError("RBAC_FILES_STORAGE needs put(), open() and delete()")
        return configured
    state = current_app.extensions["rbac"]
    local = getattr(state, "file_storage", None)
    if local is None:
        root = setting("RBAC_FILES_DIR") or os.path.join(current_app.instance_path, "rbac_files")
        local = LocalStorage(root)
        state.file_storage = local
    return local
