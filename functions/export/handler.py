"""export: a scheduled, resumable bulk export of signed URLs, streamed into a multipart upload.

Timer event -> ``ExportOptions`` (payload over EXPORT_* defaults) -> list every matching object
(ListObjectsV2, 1000 per page, prefix by prefix, skipping LINKS_PREFIX and EXPORT_PREFIX) -> sign each URL
with ONE signer bound for the run -> rows into parts of EXPORT_PART_SIZE -> CompleteMultipartUpload
publishes ``<EXPORT_PREFIX><output_prefix><triggerTime>.<csv|jsonl>`` atomically (a small export that never
fills a part is published with one PutObject, just as atomic).

Idempotency and resumption (state: ``<EXPORT_PREFIX>.checkpoints/<export id>.json``):
- export id = trigger name + trigger time; the first checkpoint is created with x-oss-forbid-overwrite, so
  two deliveries of the same tick cannot both start. A tick that is done answers "already_done"; one that
  another invocation holds (lease not expired) answers "in_progress".
- After every uploaded part the checkpoint records the parts, the row count and the listing position (the
  last key accounted for). A crash loses at most the rows after the last part: the retry (the platform
  retries failed async invocations) lists again from the position, reconciles the parts with ListParts and
  re-uploads part numbers idempotently.
- When less than EXPORT_MIN_REMAINING_SECONDS of the invocation remain, the export saves its checkpoint and
  continues in an asynchronous invocation of itself (FC InvokeFunction, ``x-fc-invocation-type: Async``).
- The signing time and validity are fixed when the export starts and stored in the checkpoint, so however
  many invocations an export takes, it writes the bytes one run would have written.

Bad payloads are logged and answered with ``{"status": "invalid", ...}`` rather than raised: an async retry
would only repeat the same bad payload.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from shared import config, credentials
from shared import logging as log
from shared.errors import AppError, InvalidParameter
from shared.events import InvalidEvent, decode_event, event_handler, parse_timer_event
from shared.export import (
    Checkpoint,
    ExportOptions,
    KeyFilter,
    PartBuffer,
    checkpoint_key,
    export_id,
    format_lines,
    format_time,
    header,
    output_key,
    parse_options,
    safe_name,
    signing_time,
    url_signer,
)
from shared.export.invoke import continuation_body, invoke_self_async
from shared.export.model import ExportFailed
from shared.keys import InvalidKey
from shared.scoped_signing import prefixes_scope
from shared.signing import Signer
from shared.storage import ListPage, ObjectInfo, OssClient, OssError
from shared.validity import format_utc
from shared.webhook import WebhookClient, WebhookError

FUNCTION = "export"
PAGE_SIZE = 1000
ROWS_PER_CHUNK = 64  # rows formatted at a time; a part overshoots its size by at most one chunk
PROGRESS_INTERVAL_SECONDS = 1.5
MAX_HOPS = 1000
HANDOFF_LEASE_SECONDS = 900  # how long a handed-off export waits for its continuation before anyone may resume
LEASE_MARGIN_SECONDS = 60
STALE_LOOKBACK = timedelta(days=7)  # how far back a new tick looks for exports that died unfinished
# What shared.export.export_id writes (safe_name slug, hash, compact time): a continuation names no other key.
_EXPORT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")
# Sorts after every key that starts with a prefix (keys are compared as UTF-8 bytes = code points).
AFTER_PREFIX = "\U0010ffff"


@dataclass
class Hooks:
    """Test seams: called after each uploaded part (part number); may raise to simulate a crash."""

    after_part: Callable[[int], None] | None = None


@dataclass
class Runtime:
    settings: config.Settings
    webhook: WebhookClient | None
    hooks: Hooks = field(default_factory=Hooks)

    @classmethod
    def from_settings(cls, settings: config.Settings) -> Runtime:
        return cls(settings, WebhookClient.from_settings(settings))


# --- the request ------------------------------------------------------------------------------------


@dataclass
class Request:
    export_id: str
    claimant: str | None  # "hop-<n>" for a continuation we handed off, None for a timer event
    hop: int
    options: ExportOptions | None = None  # timer events only; continuations read the checkpoint
    trigger_name: str = ""
    trigger_time: datetime | None = None


def parse_request(event: bytes | str | dict[str, Any], settings: config.Settings) -> Request:
    data = decode_event(event, "export")
    if "continuation" in data:
        cont = data["continuation"]
        hop = cont.get("hop") if isinstance(cont, dict) else None
        if (not isinstance(cont, dict) or not isinstance(cont.get("export_id"), str)
                or not _EXPORT_ID.fullmatch(cont["export_id"])
                or not isinstance(hop, int) or isinstance(hop, bool) or not 0 < hop <= MAX_HOPS):
            raise InvalidEvent(f"continuation needs export_id (as export ids are written) and hop (1..{MAX_HOPS})")
        return Request(export_id=cont["export_id"], claimant=f"hop-{cont['hop']}", hop=cont["hop"])
    timer = parse_timer_event(data)
    options = parse_options(timer.payload_json(), settings, trigger_name=timer.trigger_name)
    return Request(export_id=export_id(timer.trigger_name, timer.trigger_time), claimant=None, hop=0,
                   options=options, trigger_name=timer.trigger_name, trigger_time=timer.trigger_time)


# --- the run ----------------------------------------------------------------------------------------


def run(event: bytes | str | dict[str, Any], context: Any, runtime: Runtime,
        *, clock: Callable[[], float] = time.monotonic) -> dict[str, Any]:
    started = clock()
    logger = log.get_logger()
    settings = runtime.settings
    try:
        request = parse_request(event, settings)
    except InvalidParameter as error:  # a bad payload: answer, do not raise (a retry would repeat it)
        logger.error("export.invalid", code=error.code, message=error.message)
        return {"status": "invalid", "code": error.code, "message": error.message}
    timeout = float(getattr(getattr(context, "function", None), "timeout", 0) or 900)
    function_creds = credentials.function_credentials_for(context, settings)
    client = OssClient.from_settings(settings, lambda: function_creds)
    job = ExportJob(runtime, client, context, request, deadline=started + timeout, clock=clock,
                    timeout=timeout)
    try:
        return job.execute()
    except AppError as error:
        if error.status >= 500:  # ours or a dependency's: raise, the platform retries
            raise
        # a request that can never succeed (e.g. expires below URL_MIN_EXPIRES): answer, do not retry
        logger.error("export.invalid", export_id=request.export_id, code=error.code, message=error.message)
        return {"status": "invalid", "export_id": request.export_id, "code": error.code, "message": error.message}


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
        self.state_key = checkpoint_key(self.settings.export.output_prefix, request.export_id)
        self._pending: Future[None] | None = None

    # -- checkpoint storage --
    def load(self) -> Checkpoint | None:
        try:
            response = self.client.get_object(self.state_key)
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
            self.client.put_object(self.state_key, checkpoint.to_json(), content_type="application/json",
                                   headers=headers)
        except OssError as error:
            if create and error.status == 409:
                return False
            raise
        return True

    # -- entry --
    def execute(self) -> dict[str, Any]:
        now = datetime.now(timezone.utc)
        checkpoint = self.load()
        if checkpoint is None:
            if self.request.options is None:
                raise InvalidParameter(f"no export {self.request.export_id!r} to continue")
            checkpoint = self._new_checkpoint(now)
            if not self.save(checkpoint, create=True):  # another delivery of this tick won the race
                return self._status("in_progress")
            self._resume_stale_exports(now)
        else:
            if checkpoint.state == "done":
                if not checkpoint.notified:
                    self._notify(checkpoint)
                return self._status("already_done", checkpoint)
            if checkpoint.lease_held_by_other(self.request.claimant, now):
                self.logger.info("export.duplicate", lease_owner=checkpoint.lease_owner)
                return self._status("in_progress", checkpoint)
            checkpoint = checkpoint.with_lease(self.owner, self._lease_until())
            checkpoint.hops = max(checkpoint.hops, self.request.hop)
            self.save(checkpoint)
        if checkpoint.hops >= MAX_HOPS:
            checkpoint.state = "failed"
            self.save(checkpoint.with_lease(None, None))
            raise ExportFailed(f"export {checkpoint.export_id} exceeded {MAX_HOPS} invocations")
        try:
            return self._run(checkpoint)
        except Exception:
            # Release the lease so the platform's retry of this invocation may resume at once.
            try:
                current = self.load()
                if current is not None and current.state == "running" and current.lease_owner == self.owner:
                    self.save(current.with_lease(None, None))
            except Exception as release_error:  # the lease then expires on its own
                self.logger.warning("export.lease_release_failed", error=type(release_error).__name__)
            raise

    def _resume_stale_exports(self, now: datetime) -> None:
        """A new tick also resumes this trigger's recent exports whose invocation died without handing off
        (killed at its timeout, continuation lost): running, lease expired. Best effort, never fatal."""
        folder = self.state_key.rsplit("/", 1)[0] + "/"
        prefix = folder + safe_name(self.request.trigger_name) + "-"
        try:
            for info in self.client.iter_objects(prefix):
                if info.key == self.state_key or now - info.last_modified > STALE_LOOKBACK:
                    continue
                stale = Checkpoint.from_json(self.client.get_object(info.key).body)
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

    # -- the listing / upload loop --
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

    def _run(self, checkpoint: Checkpoint) -> dict[str, Any]:
        if checkpoint.result and checkpoint.result.get("completing"):
            done = self._finish_interrupted_completion(checkpoint)
            if done is not None:
                return done
        self._reconcile(checkpoint)
        options = checkpoint.export_options
        signer = self._signer(options)
        signed_at = checkpoint.signed_at_time
        validity = signer.validity(checkpoint.expires_in, now=signed_at)
        expires_at = format_utc(validity.expires_at)
        settings = self.settings
        key_filter = KeyFilter(suffixes=options.suffixes, modified_since=options.modified_since,
                               excluded=(settings.upload.links_prefix, settings.export.output_prefix))
        buffer = PartBuffer(options.part_size)
        if not checkpoint.parts:
            buffer.add(header(options.format), 0, None)
        start_position = (checkpoint.prefix_index, checkpoint.last_key)
        hop_rows = 0
        listed = checkpoint.listed
        hop_started = self.clock()
        last_progress = hop_started
        skipped_invalid = 0

        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="export-list") as prefetcher, \
                ThreadPoolExecutor(max_workers=1, thread_name_prefix="export-upload") as uploader:
            for prefix_index in range(checkpoint.prefix_index, len(options.prefixes)):
                start_after = start_position[1] if prefix_index == start_position[0] else None
                pages = self._pages(prefetcher, options.prefixes[prefix_index], start_after, key_filter)
                for page, jump_to in pages:
                    listed += len(page.objects)
                    accepted = [obj for obj in page.objects
                                if key_filter.accepts(obj.key, obj.size, obj.last_modified)]
                    lines, keys, invalid = self._lines(signer, accepted, signed_at, validity.expires_in,
                                                       expires_at, options.format)
                    skipped_invalid += invalid
                    for start in range(0, len(lines), ROWS_PER_CHUNK):
                        chunk = lines[start:start + ROWS_PER_CHUNK]
                        buffer.add("".join(chunk).encode("utf-8"), len(chunk), keys[start + len(chunk) - 1])
                        if buffer.full:  # a part ends at a row: its last key is an exact resume position
                            self._upload_part(uploader, checkpoint, buffer, prefix_index, listed)
                    hop_rows += len(lines)
                    now = self.clock()
                    if now - last_progress >= PROGRESS_INTERVAL_SECONDS:
                        last_progress = now
                        self._progress(listed, checkpoint.rows + buffer.rows, hop_rows, now - hop_started)
                    if self._time_low():
                        self._drain()  # the checkpoint is only read or changed with no upload in flight
                        cursor = jump_to or (page.objects[-1].key if page.objects else None)
                        if cursor is not None and buffer.rows == 0:
                            # nothing pending: every key listed so far is accounted for (written or filtered)
                            checkpoint.prefix_index, checkpoint.last_key = prefix_index, cursor
                        if (checkpoint.prefix_index, checkpoint.last_key) != start_position:
                            checkpoint.listed = listed
                            pages.close()
                            return self._hand_off(checkpoint)
                self._drain()
                if buffer.rows == 0:  # never move the position past rows that are still only in memory
                    checkpoint.prefix_index, checkpoint.last_key = prefix_index + 1, None
            self._drain()

        checkpoint.listed = listed
        self._progress(listed, checkpoint.rows + buffer.rows, hop_rows, self.clock() - hop_started)
        if skipped_invalid:
            self.logger.warning("export.unsignable_keys", count=skipped_invalid)
        return self._complete(checkpoint, buffer, signer, options)

    def _pages(self, prefetcher: ThreadPoolExecutor, prefix: str, start_after: str | None,
               key_filter: KeyFilter) -> Iterator[tuple[ListPage, str | None]]:
        """Pages of one prefix, the next one fetched in the background while this one is signed.

        Yields (page, jump): ``jump`` is set when the page ends inside the functions' own output (possibly
        millions of link records); the listing then continues after that prefix instead of paging through it.
        """
        def fetch(token: str | None, after: str | None) -> ListPage:
            return self.client.list_objects_v2(prefix, continuation_token=token,
                                               start_after=None if token else after, max_keys=PAGE_SIZE)

        future: Future[ListPage] | None = prefetcher.submit(fetch, None, start_after)
        while future is not None:
            page = future.result()
            last = page.objects[-1].key if page.objects else None
            excluded = key_filter.excluded_prefix(last) if last is not None else None
            jump = excluded + AFTER_PREFIX if excluded is not None and page.is_truncated else None
            if jump is not None:
                future = prefetcher.submit(fetch, None, jump)
            elif page.is_truncated and page.next_continuation_token:
                future = prefetcher.submit(fetch, page.next_continuation_token, None)
            else:
                future = None
            yield page, jump

    def _lines(self, signer: Signer, objects: list[ObjectInfo], signed_at: datetime, expires: int, expires_at: str,
               fmt: str) -> tuple[list[str], list[str], int]:
        """(formatted lines, their keys, count of keys the signer refused) for one page."""
        if not objects:
            return [], [], 0
        try:
            urls = [p.url for p in signer.presign_many([o.key for o in objects], expires=expires, now=signed_at)]
            keep = objects
        except InvalidKey:  # a key the signer refuses (control characters): leave it out, count it
            keep, urls = [], []
            for obj in objects:
                try:
                    urls.append(signer.presign(obj.key, expires=expires, now=signed_at).url)
                    keep.append(obj)
                except InvalidKey:
                    continue
        rows = [(o.key, url, o.size, o.etag, format_time(o.last_modified), expires_at)
                for o, url in zip(keep, urls, strict=True)]
        return format_lines(rows, fmt), [o.key for o in keep], len(objects) - len(keep)

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
            self.save(checkpoint)  # an upload id in the checkpoint can always be aborted later
        data, rows, last_key = buffer.take()
        number = len(checkpoint.parts) + 1
        upload_id = checkpoint.upload_id

        def store() -> None:
            etag = self.client.upload_part(checkpoint.output_key, upload_id, number, data)
            checkpoint.parts.append([number, etag, len(data)])
            checkpoint.rows += rows
            checkpoint.prefix_index, checkpoint.last_key = prefix_index, last_key
            checkpoint.listed = listed
            self.save(checkpoint)
            if self.runtime.hooks.after_part:
                self.runtime.hooks.after_part(number)

        self._pending = uploader.submit(store)

    def _drain(self) -> None:
        """Wait for the part in flight, if any; its failure is raised here."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def _progress(self, listed: int, rows: int, hop_rows: int, elapsed: float) -> None:
        rate = round(hop_rows / elapsed, 1) if elapsed > 0 else 0.0
        self.logger.info("export.progress", listed=listed, rows=rows, rate=rate)

    # -- hand-off and completion --
    def _hand_off(self, checkpoint: Checkpoint) -> dict[str, Any]:
        hop = checkpoint.hops + 1
        checkpoint.hops = hop
        until = datetime.now(timezone.utc) + timedelta(seconds=HANDOFF_LEASE_SECONDS)
        checkpoint = checkpoint.with_lease(f"hop-{hop}", until)
        self.save(checkpoint)
        body = continuation_body(checkpoint.export_id, hop, triggerName=checkpoint.trigger_name,
                                 triggerTime=checkpoint.trigger_time)
        try:
            invoke_self_async(self.settings, self.context, body)
        except Exception:
            self.save(checkpoint.with_lease(None, None))  # nobody will continue: let the platform's retry resume
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
            self.save(checkpoint)
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
        self.save(checkpoint)
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
        payload = {"type": "export.done", "export_id": checkpoint.export_id, "bucket": self.settings.oss.bucket,
                   **{k: result[k] for k in ("key", "etag", "bytes", "rows", "url", "url_expires_at") if k in result}}
        idempotency = hashlib.sha256(f"{checkpoint.export_id}\n{result.get('etag', '')}".encode()).hexdigest()
        try:
            webhook.deliver(payload, idempotency)
        except WebhookError as error:
            raise ExportFailed(f"export published but the webhook failed: {error.message}") from None
        checkpoint.notified = True
        self.save(checkpoint)


__all__ = ["ExportJob", "Hooks", "Runtime", "handler", "invoke_self_async", "parse_request", "run"]


# FC entry point: handler(event, context)
handler = event_handler(FUNCTION, Runtime.from_settings)(run)
