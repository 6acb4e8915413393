"""What one export invocation is asked to do: a timer tick (start or re-deliver an export) or the export's own
continuation (carry on with a checkpoint another invocation handed off)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared import config
from shared.events import InvalidEvent, decode_event, parse_timer_event
from shared.export.model import ExportOptions, export_id, parse_options

__all__ = ["MAX_HOPS", "Request", "parse_request"]

MAX_HOPS = 1000
# What shared.export.model.export_id writes (safe_name slug, hash, compact time): a continuation names no other key.
_EXPORT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")


@dataclass
class Request:
    export_id: str
    claimant: str | None  # "hop-<n>" for a continuation we handed off, None for a timer event
    hop: int
    options: ExportOptions | None = None  # timer events only; continuations read the checkpoint
    trigger_name: str = ""
    trigger_time: datetime | None = None


def parse_request(event: bytes | str | dict[str, Any], settings: config.Settings) -> Request:
    """The request an event carries; InvalidParameter (InvalidEvent) naming what is wrong."""
    data = decode_event(event, "export")
    if "continuation" in data:
        return _continuation(data["continuation"])
    timer = parse_timer_event(data)
    options = parse_options(timer.payload_json(), settings, trigger_name=timer.trigger_name)
    return Request(export_id=export_id(timer.trigger_name, timer.trigger_time), claimant=None, hop=0,
                   options=options, trigger_name=timer.trigger_name, trigger_time=timer.trigger_time)


def _continuation(cont: Any) -> Request:
    hop = cont.get("hop") if isinstance(cont, dict) else None
    if (not isinstance(cont, dict) or not isinstance(cont.get("export_id"), str)
            or not _EXPORT_ID.fullmatch(cont["export_id"])
            or not isinstance(hop, int) or isinstance(hop, bool) or not 0 < hop <= MAX_HOPS):
        raise InvalidEvent(f"continuation needs export_id (as export ids are written) and hop (1..{MAX_HOPS})")
    return Request(export_id=cont["export_id"], claimant=f"hop-{hop}", hop=hop)
