"""The status notes the standard's rules derive for a catalog entry (`derive_status`).

They are stored in English (the audit log and the API keep them so) and shown in the reader's
language by `status_note_display`; a note a platform admin wrote is shown as written.
"""

from __future__ import annotations

from django.utils.translation import gettext_noop

from portal.stored_texts import StoredTexts

SCRATCH_NOTE = gettext_noop(
    "Not recommended: only for static C/C++ binaries (no libc, no shell, no CA certs)."
)
ALPINE_NOTE = gettext_noop(
    "Restricted by the standard: musl-based, recurring vulnerabilities and maintenance cost. "
    "Use an approved glibc runtime image instead."
)
EOL_NOTE = gettext_noop("%(family)s %(version)s reached end of life on %(date)s.")
_NOTES = StoredTexts((SCRATCH_NOTE, ALPINE_NOTE, EOL_NOTE), depth=0)


def status_note_display(note: str) -> str:
    """A catalog entry's status note in the reader's language: the notes the standard's rules
    derive are translated; a note a platform admin wrote is shown as written."""
    return _NOTES.display(note)
