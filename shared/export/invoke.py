"""The export's asynchronous continuation: FC InvokeFunction (API 2023-03-30, ROA, ACS3-signed with the
function's own credentials, ``x-fc-invocation-type: Async``), through alibabacloud-tea-openapi.

The SDK is imported when a continuation is sent, not when the function starts: most exports never hand off.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from shared import config, credentials
from shared import logging as log
from shared.export.model import ExportFailed

__all__ = ["continuation_body", "invoke_endpoint", "invoke_self_async"]


def continuation_body(export: str, hop: int, **extra: str) -> bytes:
    """The event that continues ``export`` as its ``hop``-th invocation (shared.export.request reads it)."""
    return json.dumps({"continuation": {"export_id": export, "hop": hop}, **extra}).encode()


def invoke_endpoint(settings: config.Settings, environ: Mapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    if settings.export.invoke_endpoint:
        return settings.export.invoke_endpoint
    account = env.get("FC_ACCOUNT_ID") or settings.oss.account_id
    region = env.get("FC_REGION") or settings.oss.region
    return f"https://{account}.{region}.fc.aliyuncs.com"


def _function_name(context: Any) -> str:
    name = os.environ.get("FC_FUNCTION_NAME") or getattr(getattr(context, "function", None), "name", "")
    return str(name or "")


def invoke_self_async(settings: config.Settings, context: Any, body: bytes) -> None:
    """FC InvokeFunction (2023-03-30, ROA, ACS3-signed with the function's credentials), asynchronous."""
    from alibabacloud_tea_openapi import exceptions as openapi_errors
    from alibabacloud_tea_openapi.client import Client
    from alibabacloud_tea_openapi.utils_models import Config, OpenApiRequest, Params
    from darabonba.runtime import RuntimeOptions

    log.adopt_library_loggers()  # the SDK core adds its own console handler when first imported
    creds = credentials.function_credentials_for(context, settings)
    endpoint = invoke_endpoint(settings)
    scheme, _, host = endpoint.partition("://")
    client = Client(Config(access_key_id=creds.access_key_id, access_key_secret=creds.access_key_secret,
                           security_token=creds.security_token or None, endpoint=host, protocol=scheme,
                           region_id=settings.oss.region, connect_timeout=5000, read_timeout=10000))
    params = Params(action="InvokeFunction", version="2023-03-30", protocol=scheme, method="POST", auth_type="AK",
                    style="ROA",
                    pathname=f"/2023-03-30/functions/{quote(_function_name(context), safe='')}/invocations",
                    req_body_type="byte", body_type="byte")
    request = OpenApiRequest(headers={"x-fc-invocation-type": "Async", "x-fc-log-type": "None",
                                      "content-type": "application/json"}, body=body)
    try:
        client.call_api(params, request, RuntimeOptions(autoretry=True, max_attempts=3))
    except openapi_errors.AlibabaCloudException as error:
        raise ExportFailed(f"could not continue the export asynchronously: {getattr(error, 'code', '')}") from None
    except Exception as error:  # network failures surface as various darabonba exceptions
        raise ExportFailed(f"could not continue the export asynchronously: {type(error).__name__}") from None
