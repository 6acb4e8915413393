"""The export checkpoint: everything another invocation needs to continue an export, stored as JSON in the bucket
(``<EXPORT_PREFIX>.checkpoints/<export id>.json``)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any

from shared.export.model import ExportOptions
from shared.validity import format_utc, parse_utc

__all__ = ["Checkpoint"]


@dataclass
class Checkpoint:
    """Everything needed to continue an export in another invocation, stored as JSON in the bucket.

    Position: every object of ``prefixes[prefix_index]`` up to and including ``last_key`` (and every
    earlier prefix) is accounted for: written in an uploaded part or filtered out. Rows after it are
    listed again on resume, which is harmless because the signing time is fixed.
    """

    export_id: str
    trigger_name: str
    trigger_time: str
    output_key: str
    options: dict[str, Any]
    signed_at: str
    expires_in: int
    state: str = "running"  # running | done | failed
    upload_id: str | None = None
    parts: list[list[Any]] = field(default_factory=list)  # [part number, etag, size]
    prefix_index: int = 0
    last_key: str | None = None
    rows: int = 0
    listed: int = 0
    hops: int = 0
    lease_owner: str | None = None
    lease_until: str | None = None
    started_at: str = ""
    updated_at: str = ""
    result: dict[str, Any] | None = None
    notified: bool = False
    version: int = 1

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), ensure_ascii=False, sort_keys=True, indent=1).encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes | str) -> Checkpoint:
        value = json.loads(data)
        if not isinstance(value, dict) or value.get("version") != 1:
            raise ValueError("not a version 1 export checkpoint")
        known = {name for name in cls.__dataclass_fields__}
        return cls(**{name: item for name, item in value.items() if name in known})

    @property
    def export_options(self) -> ExportOptions:
        return ExportOptions.from_dict(self.options)

    @property
    def uploaded_bytes(self) -> int:
        """The size of the parts uploaded so far (of the published file, once completed)."""
        return sum(int(size) for _number, _etag, size in self.parts)

    @property
    def signed_at_time(self) -> datetime:
        return parse_utc(self.signed_at)

    def lease_held_by_other(self, claimant: str | None, now: datetime) -> bool:
        """True while another invocation holds the lease (it has not expired and is not ours)."""
        if self.lease_owner is None or self.lease_until is None:
            return False
        if claimant is not None and claimant == self.lease_owner:
            return False
        return parse_utc(self.lease_until) > now

    def with_lease(self, owner: str | None, until: datetime | None) -> Checkpoint:
        return replace(self, lease_owner=owner, lease_until=format_utc(until) if until else None)
