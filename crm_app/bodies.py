"""Request body limits: one per route, applied before anything reads the body.

``MAX_CONTENT_LENGTH`` (1 MiB in the demo) is every page's limit; an upload
route names the largest file it takes with :func:`upload_limit`, and its
body may hold that plus :data:`FORM_FRAMING`. The check runs first among the
app's ``before_request`` hooks, so Flask-WTF's CSRF check, which parses the
form, already reads a capped body.

A body sent without a ``Content-Length`` (``Transfer-Encoding: chunked``) is
read here, up to one byte past the limit: over it, the request is a 413.
Werkzeug alone would cut such a body at the limit and parse what it read,
so a form could arrive shortened, and still valid, with no error. Within the
limit, the body is handed on with its length, as if the client had declared
it (in memory up to :data:`SPOOL_BYTES`, then in a temporary file).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable

from flask import Flask, request
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wsgi import get_content_length

#: Room for the multipart framing and the form's other fields around an uploaded file.
FORM_FRAMING = 64 * 1024
#: A streamed body stays in memory up to this size, then goes to a temporary file.
SPOOL_BYTES = 1024 * 1024
#: Bytes read from the client at a time.
_CHUNK = 64 * 1024
#: Where the request's environ keeps the buffer, for :func:`close_body`.
_BUFFER_KEY = "crm_app.body"
#: The largest file of each upload endpoint (a callable: read per request).
_uploads: dict[str, Callable[[], int]] = {}


def upload_limit(endpoint: str, largest_file: Callable[[], int]) -> None:
    """Let ``endpoint`` take a file of up to ``largest_file()`` bytes, in a body of that
    plus :data:`FORM_FRAMING` (read per request, so a configuration change applies at once)."""
    _uploads[endpoint] = largest_file


def cap_body() -> None:
    """Set the request's body limit; buffer a streamed body, refusing it past the limit."""
    largest_file = _uploads.get(request.endpoint or "")
    if largest_file is not None:
        request.max_content_length = int(largest_file()) + FORM_FRAMING
    environ = request.environ
    if get_content_length(environ) is not None or "wsgi.input_terminated" not in environ:
        return  # a declared length is checked by Werkzeug; without either, it reads nothing
    cap = request.max_content_length
    if cap is None:
        return
    body = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 (closed at teardown)
    stream, read = environ["wsgi.input"], 0
    while read <= cap:
        chunk = stream.read(min(_CHUNK, cap + 1 - read))
        if not chunk:
            break
        body.write(chunk)
        read += len(chunk)
    if read > cap:
        body.close()
        raise RequestEntityTooLarge(f"The request body is larger than {cap:,} bytes.")
    body.seek(0)
    environ[_BUFFER_KEY] = environ["wsgi.input"] = body
    environ["CONTENT_LENGTH"] = str(read)
    # The body is whole now: it is read as a declared length, not as a stream.
    environ.pop("HTTP_TRANSFER_ENCODING", None)
    del environ["wsgi.input_terminated"]
    request.__dict__.pop("content_length", None)  # a cached "no length"


def close_body(exc: BaseException | None = None) -> None:
    """Close the buffer :func:`cap_body` made of a streamed body, if any."""
    body = request.environ.pop(_BUFFER_KEY, None)
    if body is not None:
        body.close()


def init_app(app: Flask) -> None:
    """Run :func:`cap_body` before every other ``before_request`` hook."""
    app.before_request_funcs.setdefault(None, []).insert(0, cap_body)
    app.teardown_request(close_body)
