"""Request bodies sent chunked (Transfer-Encoding: chunked, no Content-Length) made visible to Django.

gunicorn de-chunks such a body but passes no CONTENT_LENGTH, and Django reads a request without
one as empty: a chunked JSON body would be answered 400 `invalid_json`, and one of many
megabytes too, never 413. This WSGI wrapper reads the body first, at most one byte past
DATA_UPLOAD_MAX_MEMORY_SIZE, and hands Django what it read with its length: a body within the
limit is parsed as usual; a longer one carries a length over the limit, which
http_api/middleware.py answers 413 `payload_too_large` (docs/contract.md section 3) and Django
elsewhere refuses as too big. The rest of an oversized body is never read.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings

Environ = dict[str, Any]
WsgiApp = Callable[[Environ, Callable], Iterable[bytes]]
# Read in pieces of this size: a slow client never makes the process hold more than the limit.
READ_SIZE = 64 * 1024


class ChunkedBodies:
    def __init__(self, application: WsgiApp) -> None:
        self.application = application

    def __call__(self, environ: Environ, start_response: Callable) -> Iterable[bytes]:
        if _is_chunked(environ):
            body = _read_bounded(environ["wsgi.input"], settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
        return self.application(environ, start_response)


def _is_chunked(environ: Environ) -> bool:
    if environ.get("CONTENT_LENGTH"):
        return False
    return "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()


def _read_bounded(stream: Any, limit: int | None) -> bytes:
    """The body, or its first limit + 1 bytes when it is longer (None: no limit)."""
    buffer = io.BytesIO()
    while limit is None or buffer.tell() <= limit:
        want = READ_SIZE if limit is None else min(READ_SIZE, limit + 1 - buffer.tell())
        piece = stream.read(want)
        if not piece:
            break
        buffer.write(piece)
    return buffer.getvalue()
