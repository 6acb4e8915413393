"""Export checkpoints kept as JSON objects in the bucket (``<EXPORT_PREFIX>.checkpoints/<export id>.json``).

Creating the first checkpoint is atomic (``x-oss-forbid-overwrite``): of two deliveries of one tick, one starts
the export and the other learns that it exists.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

from shared.export.checkpoint import Checkpoint
from shared.export.model import CHECKPOINT_FOLDER, checkpoint_key, safe_name
from shared.storage import OssClient, OssError
from shared.validity import format_utc

__all__ = ["CheckpointStore"]


class CheckpointStore:
    def __init__(self, client: OssClient, export_prefix: str) -> None:
        self.client = client
        self.export_prefix = export_prefix

    def key(self, export: str) -> str:
        return checkpoint_key(self.export_prefix, export)

    def load(self, export: str) -> Checkpoint | None:
        try:
            response = self.client.get_object(self.key(export))
        except OssError as error:
            if error.status == 404:
                return None
            raise
        return Checkpoint.from_json(response.body)

    def save(self, checkpoint: Checkpoint, *, create: bool = False) -> bool:
        """PUT the checkpoint (atomic); with ``create``, only if none exists (False if one does)."""
        checkpoint.updated_at = format_utc(datetime.now(timezone.utc))
        headers = {"x-oss-forbid-overwrite": "true"} if create else None
        try:
            self.client.put_object(self.key(checkpoint.export_id), checkpoint.to_json(),
                                   content_type="application/json", headers=headers)
        except OssError as error:
            if create and error.status == 409:
                return False
            raise
        return True

    def recent(self, trigger_name: str, now: datetime, lookback: timedelta, *,
               besides: str) -> Iterator[Checkpoint]:
        """The checkpoints of ``trigger_name``'s exports stored within ``lookback`` of ``now``, but ``besides``."""
        prefix = f"{self.export_prefix}{CHECKPOINT_FOLDER}{safe_name(trigger_name)}-"
        for info in self.client.iter_objects(prefix):
            if info.key == self.key(besides) or now - info.last_modified > lookback:
                continue
            yield Checkpoint.from_json(self.client.get_object(info.key).body)
