"""Keep passwords of storage URLs out of everything ltr prints or writes.

``postgresql://user:secret@host/db`` is how a study storage on a database server is named, so
the URL reaches messages, reports and manifests; the password must not. One helper does it
for a URL and for any text that holds URLs (error messages of the database drivers too).
"""

from __future__ import annotations

import re

#: scheme://user:password@ -- the password is everything between the first ':' after the user
#: and the last '@' before the host (passwords may hold '@' or ':').
_CREDENTIALS = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]*://[^:/@\s]*:)(?P<secret>[^\s/]*)@")

REDACTED = "***"


def redact_url(text: str) -> str:
    """`text` (a URL, or a message holding URLs) with every URL password replaced by ``***``.

    >>> redact_url("postgresql://user:secret@dbhost/ltr")
    'postgresql://user:***@dbhost/ltr'
    """
    return _CREDENTIALS.sub(lambda m: f"{m['head']}{REDACTED}@", str(text))


def url_password(url: str) -> str | None:
    """The password of a storage URL, if it has one (to scrub a driver's message of it)."""
    match = _CREDENTIALS.search(str(url))
    return match["secret"] if match and match["secret"] else None


__all__ = ["REDACTED", "redact_url", "url_password"]
