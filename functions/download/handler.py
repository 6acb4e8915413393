"""Download proxy: ``GET|HEAD /download/<key>`` -> a redirect to a fresh signed URL, or the object itself.

An adapter: shared/downloads.py decides who may have the key (caller or proxy link) and whether it is
redirected or served; this file renders the answer. Served bytes come from users, so the answer carries
headers that stop a browser from running them as a page of the API's origin.
"""

from __future__ import annotations

from typing import Any

from shared import downloads, http
from shared.config import Settings

FUNCTION = "download"
# Passed through from OSS in stream mode (lowercase names as the storage client returns them).
PASSED_HEADERS = {"content-type": "Content-Type", "etag": "ETag", "last-modified": "Last-Modified",
                  "content-range": "Content-Range", "content-language": "Content-Language",
                  "content-encoding": "Content-Encoding"}
STREAM_SAFETY_HEADERS = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "default-src 'none'; sandbox",
                         "Cache-Control": "private, no-cache", "Accept-Ranges": "bytes"}


@http.http_handler(FUNCTION, methods=("GET", "HEAD"))
def handler(request: http.Request, settings: Settings, context: Any) -> http.Response:
    grant = downloads.authorize(request, settings)
    answer = downloads.serve(request, settings, context, grant)
    if isinstance(answer, downloads.Redirect):
        return http.redirect(answer.url)
    return _served(answer)


def _served(answer: downloads.Served) -> http.Response:
    headers = {name: answer.headers[source] for source, name in PASSED_HEADERS.items() if source in answer.headers}
    headers.update(STREAM_SAFETY_HEADERS)
    if answer.content_disposition:
        headers["Content-Disposition"] = answer.content_disposition
    content_type = headers.pop("Content-Type", "application/octet-stream")
    if answer.status == 304:
        return {"statusCode": 304, "headers": headers, "body": "", "isBase64Encoded": False}
    return http.binary_response(answer.status, answer.body, content_type, headers)
