"""A test function for the gateway: echoes what the platform gave it, or fails on request."""

import json
import os


def handler(event, context):
    data = json.loads(event)
    if isinstance(data, dict) and data.get("fail"):
        raise RuntimeError("asked to fail")
    if isinstance(data, dict) and "rawPath" in data:
        return {"statusCode": 200, "headers": {"content-type": "application/json", "x-fc-forbidden": "1",
                                               "server": "mine", "x-echo": "yes"},
                "body": json.dumps({"event": data, "request_id": context.request_id,
                                    "function": context.function.name, "timeout": context.function.timeout,
                                    "has_credentials": bool(context.credentials.access_key_id),
                                    "bucket_env": os.environ.get("OSS_BUCKET")})}
    return {"echo": data, "function": context.function.name}
