"""Attachments on protected records: storage, content checks and the access rule.

A host attaches files to any registered resource's records. Nothing about a
file is decided by the file: every right is computed from its parent record
when it is used, through the same query filter and ``can()`` as the record,
so a reassignment or a sharing agreement moves the files along with no copy:

* upload needs ``edit`` on the record;
* download needs ``view`` (for a shared record, ``view`` shared);
* delete needs ``edit`` and ``delete``.

:mod:`.storage` keeps the bytes (local disk by default, any object with
``put``/``open``/``delete`` otherwise), :mod:`.content` checks size, type
(sniffed from the bytes) and names, :mod:`.access` is the rule,
:mod:`.service` the operations the host's views call, :mod:`.quota` the
storage a workspace's plan allows, and :mod:`.cleanup` removes stored bytes
once a record's or a workspace's deletion commits.
"""

from __future__ import annotations

from .access import ACTION_NEEDS, attachment_or_404, may, parent_record
from .content import FileRejected, checked_upload, safe_filename, sniff
from .quota import StorageUsage, quota_for, storage_usage
from .service import attach, attachments_of, remove, send
from .storage import LocalStorage, Storage, storage

__all__ = ["ACTION_NEEDS", "FileRejected", "LocalStorage", "Storage", "StorageUsage", "attach",
           "attachment_or_404", "attachments_of", "checked_upload", "may", "parent_record",
           "quota_for", "remove", "safe_filename", "send", "sniff", "storage", "storage_usage"]
