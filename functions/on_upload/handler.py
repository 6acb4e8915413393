"""on_upload: a signed link for every new object (shared/uploads.py), as an FC OSS-trigger handler.

Event (``{"events": [...]}``, several records) -> shared.events.parse_oss_event -> shared.uploads.link_uploads
with the function's OSS client -> its summary: {"links": [...], "skipped": [...], "failed": []}.

An event that cannot be read at all is logged and answered ``{"status": "invalid", ...}``: the platform would
deliver the same bytes again and again. A record that failed for a reason a retry may cure (a 5xx) makes the
invocation raise after every record was tried, so the platform retries the event.
"""

from __future__ import annotations

from typing import Any

from shared import credentials
from shared import logging as log
from shared.events import InvalidEvent, event_handler, parse_oss_event
from shared.storage import OssClient
from shared.uploads import Runtime, link_uploads

FUNCTION = "on_upload"


def process(event: bytes | str | dict[str, Any], context: Any, runtime: Runtime) -> dict[str, Any]:
    try:
        parsed = parse_oss_event(event)
    except InvalidEvent as error:  # permanent: the platform would deliver the same bytes again and again
        log.get_logger().error("upload.invalid_event", code=error.code, message=error.message)
        return {"status": "invalid", "code": error.code, "message": error.message}
    function_creds = credentials.function_credentials_for(context, runtime.settings)
    client = OssClient.from_settings(runtime.settings, lambda: function_creds)
    return link_uploads(parsed, context, runtime, client)


# FC entry point: handler(event, context)
handler = event_handler(FUNCTION, Runtime.from_settings)(process)
