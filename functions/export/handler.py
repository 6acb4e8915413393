"""export: the scheduled, resumable bulk export of signed URLs (shared/export/job.py), as an FC event handler.

Event (a timer tick, or the export's own asynchronous continuation) -> shared.export.request.parse_request ->
shared.export.job.run_export with the function's OSS client -> its answer: {"status": "done" | "continued" |
"already_done" | "in_progress", "export_id", ...}.

Bad payloads, and requests that can never succeed (e.g. expires below URL_MIN_EXPIRES), are logged and answered
with ``{"status": "invalid", ...}`` rather than raised: an async retry would only repeat them. Failures of ours
or a dependency's (5xx) are raised, so the platform retries the invocation and the export resumes.
"""

from __future__ import annotations

from typing import Any

from shared import credentials
from shared import logging as log
from shared.errors import AppError, InvalidParameter
from shared.events import event_handler
from shared.export.job import Runtime, run_export
from shared.export.request import parse_request
from shared.storage import OssClient

FUNCTION = "export"


def run(event: bytes | str | dict[str, Any], context: Any, runtime: Runtime) -> dict[str, Any]:
    logger = log.get_logger()
    try:
        request = parse_request(event, runtime.settings)
    except InvalidParameter as error:  # a bad payload: answer, do not raise (a retry would repeat it)
        logger.error("export.invalid", code=error.code, message=error.message)
        return {"status": "invalid", "code": error.code, "message": error.message}
    function_creds = credentials.function_credentials_for(context, runtime.settings)
    client = OssClient.from_settings(runtime.settings, lambda: function_creds)
    try:
        return run_export(request, context, runtime, client)
    except AppError as error:
        if error.status >= 500:  # ours or a dependency's: raise, the platform retries
            raise
        logger.error("export.invalid", export_id=request.export_id, code=error.code, message=error.message)
        return {"status": "invalid", "export_id": request.export_id, "code": error.code, "message": error.message}


# FC entry point: handler(event, context)
handler = event_handler(FUNCTION, Runtime.from_settings)(run)
