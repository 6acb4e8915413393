"""The export job: a scheduled, resumable bulk export of signed URLs, streamed into a multipart upload.

Request (shared/export/request.py) -> list every matching object (ListObjectsV2, 1000 per page, prefix by
prefix, skipping LINKS_PREFIX and EXPORT_PREFIX; shared/export/listing.py) -> sign each URL with ONE signer
bound for the run -> rows into parts of EXPORT_PART_SIZE -> CompleteMultipartUpload publishes
``<EXPORT_PREFIX><output_prefix><triggerTime>.<csv|jsonl>`` atomically (a small export that never fills a part
is published with one PutObject, just as atomic).

Idempotency and resumption (state: ``<EXPORT_PREFIX>.checkpoints/<export id>.json``, shared/export/checkpoint.py):
- export id = trigger name + trigger time; the first checkpoint is created with x-oss-forbid-overwrite, so
  two deliveries of the same tick cannot both start. A tick that is done answers "already_done"; one that
  another invocation holds (lease not expired) answers "in_progress".
- After every uploaded part the checkpoint records the parts, the row count and the listing position (the
  last key accounted for). A crash loses at most the rows after the last part: the retry (the platform
  retries failed async invocations) lists again from the position, reconciles the parts with ListParts and
  re-uploads part numbers idempotently.
- When less than EXPORT_MIN_REMAINING_SECONDS of the invocation remain, the export saves its checkpoint and
  continues in an asynchronous invocation of itself (shared/export/invoke.py).
- The signing time and validity are fixed when the export starts and stored in the checkpoint, so however
  many invocations an export takes, it writes the bytes one run would have written.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from shared import config, credentials
from shared import logging as log
from shared.errors import InvalidParameter
from shared.export.checkpoint import Checkpoint
from shared.export.invoke import continuation_body, invoke_self_async
from shared.export.listing import Walk, pages, signed_lines
from shared.export.model import (
    ExportFailed,
    ExportOptions,
    KeyFilter,
    PartBuffer,
    header,
    output_key,
    signing_time,
    url_signer,
)
from shared.export.request import MAX_HOPS, Request
from shared.export.store import CheckpointStore
from shared.scoped_signing import prefixes_scope
from shared.signing import Signer
from shared.storage import ListPage, OssClient, OssError
from shared.validity import format_utc
from shared.webhook import WebhookClient, WebhookError

__all__ = ["ExportJob", "Runtime", "run_export"]

ROWS_PER_CHUNK = 64  # rows formatted at a time; a part overshoots its size by at most one chunk
PROGRESS_INTERVAL_SECONDS = 1.5
HANDOFF_LEASE_SECONDS = 900  # how long a handed-off export waits for its continuation before anyone may resume
LEASE_MARGIN_SECONDS = 60
STALE_LOOKBACK = timedelta(days=7)  # how far back a new tick looks for exports that died unfinished
DEFAULT_TIMEOUT_SECONDS = 900  # when the context does not say: the export's Timeout in template.yml


@dataclass
class Runtime:
    """What one container builds once: settings and the webhook client."""

    settings: config.Settings
    webhook: WebhookClient | None

    @classmethod
    def from_settings(cls, settings: config.Settings) -> Runtime:
        return cls(settings, WebhookClient.from_settings(settings))


def run_export(request: Request, context: Any, runtime: Runtime, client: OssClient, *,
               clock: Callable[[], float] = time.monotonic) -> dict[str, Any]:
    """Start, resume or continue the export ``request`` names, within the invocation's time (FC context)."""
    started = clock()
    timeout = float(getattr(getattr(context, "function", None), "timeout", 0) or DEFAULT_TIMEOUT_SECONDS)
    job = ExportJob(runtime, client, context, request, deadline=started + timeout, clock=clock, timeout=timeout)
    return job.execute()


class ExportJob:
    def __init__(self, runtime: Runtime, client: OssClient, context: Any, request: Request, *, deadline: float,
                 clock: Callable[[], float], timeout: float) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        self.client = client
        self.context = context
        self.request = request
        self.deadline = deadline
        self.clock = clock
        self.timeout = timeout
        self.owner = str(getattr(context, "request_id", "") or uuid.uuid4().hex)
        self.logger = log.get_logger().bind(export_id=request.export_id)
        self.store = CheckpointStore(client, self.settings.export.output_prefix)
        self._pending: Future[None] | None = None

    # -- entry --
    def execute(self) -> dict[str, Any]:
        now = datetime.now(timezone.utc)
        stored = self.store.load(self.request.export_id)
        claimed = self._start(now) if stored is None else self._claim(stored, now)
        if isinstance(claimed, dict):  # nothing to run: the answer
            return claimed
        checkpoint = claimed
        if checkpoint.hops >= MAX_HOPS:
            checkpoint.state = "failed"
            self.store.save(checkpoint.with_lease(None, None))
            raise ExportFailed(f"export {checkpoint.export_id} exceeded {MAX_HOPS} invocations")
        try:
            return self._run(checkpoint)
        except Exception:
            self._release_lease()
            raise

    def _start(self, now: datetime) -> Checkpoint | dict[str, Any]:
        """A new export: its first checkpoint, created only if no other delivery of this tick created it."""
        if self.request.options is None:
            raise InvalidParameter(f"no export {self.request.export_id!r} to continue")
        checkpoint = self._new_checkpoint(now)
        if not self.store.save(checkpoint, create=True):  # another delivery of this tick won the race
            return self._status("in_progress")
        self._resume_stale_exports(now)
        return checkpoint

    def _claim(self, checkpoint: Checkpoint, now: datetime) -> Checkpoint | dict[str, Any]:
        """An existing export: done (notice re-sent if it failed), held by another invocation, or ours now."""
        if checkpoint.state == "done":
            if not checkpoint.notified:
                self._notify(checkpoint)
            return self._status("already_done", checkpoint)
        if checkpoint.lease_held_by_other(self.request.claimant, now):
            self.logger.info("export.duplicate", lease_owner=checkpoint.lease_owner)
            return self._status("in_progress", checkpoint)
        checkpoint = checkpoint.with_lease(self.owner, self._lease_until())
        checkpoint.hops = max(checkpoint.hops, self.request.hop)
        self.store.save(checkpoint)
        return checkpoint

    def _release_lease(self) -> None:
        """After a failure: release the lease so the platform's retry of this invocation may resume at once."""
        try:
            current = self.store.load(self.request.export_id)
            if current is not None and current.state == "running" and current.lease_owner == self.owner:
                self.store.save(current.with_lease(None, None))
        except Exception as release_error:  # the lease then expires on its own
            self.logger.warning("export.lease_release_failed", error=type(release_error).__name__)

    def _resume_stale_exports(self, now: datetime) -> None:
        """A new tick also resumes this trigger's recent exports whose invocation died without handing off
        (killed at its timeout, continuation lost): running, lease expired. Best effort, never fatal."""
        try:
            for stale in self.store.recent(self.request.trigger_name, now, STALE_LOOKBACK,
                                           besides=self.request.export_id):
                if stale.state != "running" or stale.lease_held_by_other(None, now):
                    continue
                hop = stale.hops + 1
                invoke_self_async(self.settings, self.context, continuation_body(stale.export_id, hop))
                self.logger.warning("export.resumed_stale", stale_export_id=stale.export_id, hop=hop)
        except Exception as error:  # the new tick's own export matters more
            self.logger.warning("export.stale_scan_failed", error=type(error).__name__)

    def _lease_until(self) -> datetime:
        return datetime.now(timezone.utc) + timedelta(seconds=self.timeout + LEASE_MARGIN_SECONDS)

    def _new_checkpoint(self, now: datetime) -> Checkpoint:
        options = self.request.options
        trigger_time = self.request.trigger_time
        assert options is not None and trigger_time is not None
        signed_at = signing_time(trigger_time, now)
        signer = self._signer(options)
        validity = signer.validity(options.expires, now=signed_at)
        return Checkpoint(
            export_id=self.request.export_id, trigger_name=self.request.trigger_name,
            trigger_time=format_utc(trigger_time),
            output_key=output_key(self.settings.export.output_prefix, options, trigger_time),
            options=options.to_dict(), signed_at=format_utc(signed_at), expires_in=validity.expires_in,
            started_at=format_utc(now), lease_owner=self.owner, lease_until=format_utc(self._lease_until()),
        )

    def _signer(self, options: ExportOptions) -> Signer:
        # The same session signs the rows and the link to the export file itself, so its scope covers both.
        output_prefix = self.settings.export.output_prefix + options.output_prefix
        scope = prefixes_scope([*options.prefixes, output_prefix]) if options.prefixes else None
        creds = credentials.signing_credentials(self.context, self.settings, scope)
        return url_signer(self.settings, creds, domain=options.domain, scheme=options.scheme,
                          version=options.version)

    def _status(self, status: str, checkpoint: Checkpoint | None = None) -> dict[str, Any]:
        answer: dict[str, Any] = {"status": status, "export_id": self.request.export_id}
        if checkpoint is not None:
            answer.update({"key": checkpoint.output_key, "rows": checkpoint.rows})
        return answer

    def _reconcile(self, checkpoint: Checkpoint) -> None:
        """Make the checkpoint agree with what OSS holds; restart from scratch if it cannot."""
        if checkpoint.upload_id is None:
            return
        try:
            remote = {number: etag.strip('"').upper()
                      for number, etag, _size in self.client.list_parts(checkpoint.output_key, checkpoint.upload_id)}
        except OssError as error:
            if error.status != 404:
                raise
            remote = None
        if remote is not None and all(remote.get(n) == str(etag).strip('"').upper()
                                       for n, etag, _size in checkpoint.parts):
            return
        self.logger.warning("export.restart", reason="multipart upload missing or inconsistent",
                            parts=len(checkpoint.parts))
        if remote is not None:
            with contextlib.suppress(OssError):  # best effort: OSS expires forgotten uploads anyway
                self.client.abort_multipart_upload(checkpoint.output_key, checkpoint.upload_id)
        checkpoint.upload_id, checkpoint.parts, checkpoint.rows = None, [], 0
        checkpoint.prefix_index, checkpoint.last_key = 0, None

    # -- the listing / upload loop --
    def _run(self, checkpoint: Checkpoint) -> dict[str, Any]:
        if checkpoint.result and checkpoint.result.get("completing"):
            done = self._finish_interrupted_completion(checkpoint)
            if done is not None:
                return done
        self._reconcile(checkpoint)
        walk = self._start_pass(checkpoint)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="export-list") as prefetcher, \
                ThreadPoolExecutor(max_workers=1, thread_name_prefix="export-upload") as uploader:
            for prefix_index in range(checkpoint.prefix_index, len(walk.options.prefixes)):
                if self._export_prefix(walk, checkpoint, prefix_index, prefetcher, uploader):
                    return self._hand_off(checkpoint)
            self._drain()

        checkpoint.listed = walk.listed
        self._progress(walk, checkpoint, self.clock())
        if walk.unsignable:
            self.logger.warning("export.unsignable_keys", count=walk.unsignable)
        return self._complete(checkpoint, walk.buffer, walk.signer, walk.options)

    def _start_pass(self, checkpoint: Checkpoint) -> Walk:
        options = checkpoint.export_options
        signer = self._signer(options)
        signed_at = checkpoint.signed_at_time
        validity = signer.validity(checkpoint.expires_in, now=signed_at)
        key_filter = KeyFilter(suffixes=options.suffixes, modified_since=options.modified_since,
                               excluded=(self.settings.upload.links_prefix, self.settings.export.output_prefix))
        buffer = PartBuffer(options.part_size)
        if not checkpoint.parts:
            buffer.add(header(options.format), 0, None)
        started = self.clock()
        return Walk(options=options, signer=signer, signed_at=signed_at, expires_in=validity.expires_in,
                     expires_at=format_utc(validity.expires_at), key_filter=key_filter, buffer=buffer,
                     start_position=(checkpoint.prefix_index, checkpoint.last_key), listed=checkpoint.listed,
                     started=started, last_progress=started)

    def _export_prefix(self, walk: Walk, checkpoint: Checkpoint, prefix_index: int,
                       prefetcher: ThreadPoolExecutor, uploader: ThreadPoolExecutor) -> bool:
        """Every page of one prefix into the buffer and parts; True when the export must hand off now."""
        start_after = walk.start_position[1] if prefix_index == walk.start_position[0] else None
        listing = pages(self.client, prefetcher, walk.options.prefixes[prefix_index], start_after, walk.key_filter)
        for page, jump_to in listing:
            self._write_page(walk, checkpoint, page, prefix_index, uploader)
            if self._time_low() and self._stop_here(walk, checkpoint, page, jump_to, prefix_index):
                listing.close()
                return True
        self._drain()
        if walk.buffer.rows == 0:  # never move the position past rows that are still only in memory
            checkpoint.prefix_index, checkpoint.last_key = prefix_index + 1, None
        return False

    def _write_page(self, walk: Walk, checkpoint: Checkpoint, page: ListPage, prefix_index: int,
                    uploader: ThreadPoolExecutor) -> None:
        walk.listed += len(page.objects)
        accepted = [obj for obj in page.objects if walk.key_filter.accepts(obj.key, obj.size, obj.last_modified)]
        lines, keys, invalid = signed_lines(walk.signer, accepted, walk.signed_at, walk.expires_in, walk.expires_at,
                                            walk.options.format)
        walk.unsignable += invalid
        for start in range(0, len(lines), ROWS_PER_CHUNK):
            chunk = lines[start:start + ROWS_PER_CHUNK]
            walk.buffer.add("".join(chunk).encode("utf-8"), len(chunk), keys[start + len(chunk) - 1])
            if walk.buffer.full:  # a part ends at a row: its last key is an exact resume position
                self._upload_part(uploader, checkpoint, walk.buffer, prefix_index, walk.listed)
        walk.rows += len(lines)
        now = self.clock()
        if now - walk.last_progress >= PROGRESS_INTERVAL_SECONDS:
            walk.last_progress = now
            self._progress(walk, checkpoint, now)

    def _stop_here(self, walk: Walk, checkpoint: Checkpoint, page: ListPage, jump_to: str | None,
                   prefix_index: int) -> bool:
        """Time is short: record the position reached; True if it moved (a continuation makes progress)."""
        self._drain()  # the checkpoint is only read or changed with no upload in flight
        cursor = jump_to or (page.objects[-1].key if page.objects else None)
        if cursor is not None and walk.buffer.rows == 0:
            # nothing pending: every key listed so far is accounted for (written or filtered)
            checkpoint.prefix_index, checkpoint.last_key = prefix_index, cursor
        if (checkpoint.prefix_index, checkpoint.last_key) == walk.start_position:
            return False
        checkpoint.listed = walk.listed
        return True

    def _time_low(self) -> bool:
        return self.deadline - self.clock() < self.settings.export.min_remaining

    def _upload_part(self, uploader: ThreadPoolExecutor, checkpoint: Checkpoint, buffer: PartBuffer,
                     prefix_index: int, listed: int) -> None:
        """Upload the buffer as the next part in the background (one part in flight: listing and signing go
        on meanwhile); the checkpoint is updated and saved once the part is stored."""
        self._drain()
        options = checkpoint.export_options
        if checkpoint.upload_id is None:
            checkpoint.upload_id = self.client.initiate_multipart_upload(checkpoint.output_key,
                                                                         content_type=options.content_type)
            self.store.save(checkpoint)  # an upload id in the checkpoint can always be aborted later
        data, rows, last_key = buffer.take()
        number = len(checkpoint.parts) + 1
        upload_id = checkpoint.upload_id

        def store() -> None:
            etag = self.client.upload_part(checkpoint.output_key, upload_id, number, data)
            checkpoint.parts.append([number, etag, len(data)])
            checkpoint.rows += rows
            checkpoint.prefix_index, checkpoint.last_key = prefix_index, last_key
            checkpoint.listed = listed
            self.store.save(checkpoint)

        self._pending = uploader.submit(store)

    def _drain(self) -> None:
        """Wait for the part in flight, if any; its failure is raised here."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def _progress(self, walk: Walk, checkpoint: Checkpoint, now: float) -> None:
        elapsed = now - walk.started
        rate = round(walk.rows / elapsed, 1) if elapsed > 0 else 0.0
        self.logger.info("export.progress", listed=walk.listed, rows=checkpoint.rows + walk.buffer.rows, rate=rate)

    # -- hand-off and completion --
    def _hand_off(self, checkpoint: Checkpoint) -> dict[str, Any]:
        hop = checkpoint.hops + 1
        checkpoint.hops = hop
        until = datetime.now(timezone.utc) + timedelta(seconds=HANDOFF_LEASE_SECONDS)
        checkpoint = checkpoint.with_lease(f"hop-{hop}", until)
        self.store.save(checkpoint)
        body = continuation_body(checkpoint.export_id, hop, triggerName=checkpoint.trigger_name,
                                 triggerTime=checkpoint.trigger_time)
        try:
            invoke_self_async(self.settings, self.context, body)
        except Exception:
            self.store.save(checkpoint.with_lease(None, None))  # nobody will continue: let the platform's retry resume
            raise
        self.logger.info("export.continued", hop=hop, rows=checkpoint.rows, parts=len(checkpoint.parts),
                         position=checkpoint.last_key)
        return {"status": "continued", "export_id": checkpoint.export_id, "hop": hop, "rows": checkpoint.rows,
                "key": checkpoint.output_key}

    def _complete(self, checkpoint: Checkpoint, buffer: PartBuffer, signer: Signer,
                  options: ExportOptions) -> dict[str, Any]:
        data, rows, _ = buffer.take()
        if checkpoint.upload_id is None:
            etag = self.client.put_object(checkpoint.output_key, data, content_type=options.content_type)
            checkpoint.rows += rows
            size = len(data)
        else:
            if data:
                number = len(checkpoint.parts) + 1
                part_etag = self.client.upload_part(checkpoint.output_key, checkpoint.upload_id, number, data)
                checkpoint.parts.append([number, part_etag, len(data)])
                checkpoint.rows += rows
            # every row is in a part now: a retry after a failed completion must list nothing again
            checkpoint.prefix_index, checkpoint.last_key = len(options.prefixes), None
            checkpoint.result = {"completing": True}
            self.store.save(checkpoint)
            etag = self.client.complete_multipart_upload(
                checkpoint.output_key, checkpoint.upload_id, [(n, e) for n, e, _s in checkpoint.parts])
            size = checkpoint.uploaded_bytes
        return self._mark_done(checkpoint, etag, size, signer)

    def _finish_interrupted_completion(self, checkpoint: Checkpoint) -> dict[str, Any] | None:
        """A crash between CompleteMultipartUpload and the checkpoint: the file may already be published."""
        try:
            info = self.client.head_object(checkpoint.output_key)
        except OssError as error:
            if error.status == 404:
                checkpoint.result = None
                return None
            raise
        size = checkpoint.uploaded_bytes
        if info.size != size:
            checkpoint.result = None
            return None
        return self._mark_done(checkpoint, info.etag, size, self._signer(checkpoint.export_options))

    def _mark_done(self, checkpoint: Checkpoint, etag: str, size: int, signer: Signer) -> dict[str, Any]:
        options = checkpoint.export_options
        link = signer.presign(checkpoint.output_key, expires=options.expires)
        url_expires_at = format_utc(link.expires_at)
        checkpoint.state = "done"
        checkpoint.result = {"key": checkpoint.output_key, "etag": etag, "bytes": size, "rows": checkpoint.rows,
                             "parts": len(checkpoint.parts), "url": link.url, "url_expires_at": url_expires_at,
                             "finished_at": format_utc(datetime.now(timezone.utc))}
        checkpoint = checkpoint.with_lease(None, None)
        self.store.save(checkpoint)
        self.logger.info("export.done", key=checkpoint.output_key, rows=checkpoint.rows, bytes=size,
                         parts=len(checkpoint.parts), hops=checkpoint.hops, url=link.url,
                         url_expires_at=url_expires_at)
        if options.notify:
            self._notify(checkpoint)
        return {"status": "done", "export_id": checkpoint.export_id, "key": checkpoint.output_key,
                "rows": checkpoint.rows, "bytes": size, "parts": len(checkpoint.parts), "hops": checkpoint.hops,
                "url": link.url, "url_expires_at": url_expires_at}

    def _notify(self, checkpoint: Checkpoint) -> None:
        webhook = self.runtime.webhook
        if webhook is None or not checkpoint.export_options.notify or not checkpoint.result:
            return
        result = checkpoint.result
        payload: dict[str, Any] = {
            "type": "export.done", "export_id": checkpoint.export_id, "bucket": self.settings.oss.bucket,
            **{k: result[k] for k in ("key", "etag", "bytes", "rows", "url", "url_expires_at") if k in result}}
        idempotency = hashlib.sha256(f"{checkpoint.export_id}\n{result.get('etag', '')}".encode()).hexdigest()
        try:
            webhook.deliver(payload, idempotency)
        except WebhookError as error:
            raise ExportFailed(f"export published but the webhook failed: {error.message}") from None
        checkpoint.notified = True
        self.store.save(checkpoint)
