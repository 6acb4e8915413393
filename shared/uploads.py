"""on_upload's job: a signed link for every new object, delivered to the link record, the webhook and the log.

For each record of an OSS event (several per event, all processed even if one fails):

1. skip what is not a finished new object (multipart steps, removals), another bucket, the functions'
   own output (LINKS_PREFIX, EXPORT_PREFIX: never triggers itself) and what the UPLOAD_* filters reject;
2. HEAD the object (content type, current ETag). The key is used as delivered; only if that object does
   not exist are its URL-decoded forms tried (whether the cloud encodes keys is unconfirmed), so the
   store resolves the ambiguity. A record whose ETag no longer matches is stale (a newer upload has its
   own event) and is skipped;
3. idempotency under at-least-once delivery: if the link record already exists for this ETag and is
   still valid, it is reused as is (shared/link_records.py); otherwise the URL is signed at a time derived
   from the event time (``shared.export.signing_time``), so a duplicate event produces the same URL and record;
4. deliver: link record ``<LINKS_PREFIX><key>.json``, webhook (``Idempotency-Key`` =
   sha256(bucket, key, etag)), one log line (never the URL's signature).

Any transient failure (OSS, credentials, the webhook: a 5xx) makes ``link_uploads`` raise DeliveryFailed after
all records were tried, so the platform retries the event; what already succeeded is reused on the retry. A
record that can never succeed (unreadable, a time out of range, a lone surrogate, a key OSS would refuse) is
logged and skipped: failing for it would have the platform deliver the same event again forever.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from shared import config, credentials
from shared import logging as log
from shared.errors import AppError, UpstreamError
from shared.events import OssEvent, OssObjectRecord
from shared.export import KeyFilter, signing_time, url_signer
from shared.keys import InvalidKey
from shared.link_records import link_record, link_record_key, record_body, reusable_record
from shared.scoped_signing import prefixes_scope
from shared.signing import Signer
from shared.storage import ObjectInfo, OssClient, OssError
from shared.webhook import WebhookClient, WebhookError, idempotency_key

__all__ = ["DeliveryFailed", "Runtime", "link_uploads"]

RECORD_READ_LIMIT = 64 * 1024  # a link record is about 1 KiB; anything larger is not ours to parse


class DeliveryFailed(UpstreamError):
    code = "LinkDeliveryFailed"


class _Skip(Exception):
    """A record left out for a reason that retrying cannot change."""

    def __init__(self, key: str, reason: str) -> None:
        self.key, self.reason = key, reason


@dataclass
class Runtime:
    """What one container builds once: settings, filters, the webhook client."""

    settings: config.Settings
    key_filter: KeyFilter
    webhook: WebhookClient | None

    @classmethod
    def from_settings(cls, settings: config.Settings) -> Runtime:
        upload = settings.upload
        key_filter = KeyFilter(prefixes=upload.prefixes, suffixes=upload.suffixes, min_size=upload.min_size,
                               max_size=upload.max_size,
                               excluded=(upload.links_prefix, settings.export.output_prefix))
        return cls(settings, key_filter, WebhookClient.from_settings(settings))


@dataclass
class _Invocation:
    runtime: Runtime
    context: Any
    client: OssClient
    signer: Signer | None = None
    links: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)

    def signer_for_links(self) -> Signer:
        """One signer per invocation (the fast path, and one credentials read), scoped to UPLOAD_PREFIXES."""
        if self.signer is None:
            settings = self.runtime.settings
            self.signer = url_signer(settings, credentials.signing_credentials(
                self.context, settings, prefixes_scope(settings.upload.prefixes)))
        return self.signer


def link_uploads(event: OssEvent, context: Any, runtime: Runtime, client: OssClient) -> dict[str, Any]:
    """Every record of ``event`` linked or skipped: {"links", "skipped", "failed": []}; DeliveryFailed if a
    record failed for a reason a retry may cure."""
    logger = log.get_logger()
    run = _Invocation(runtime, context, client)
    for index, reason in event.invalid:  # permanent: logged and skipped, the other records still count
        logger.error("upload.invalid_record", index=index, reason=reason)
        run.skipped.append({"index": index, "reason": "invalid_record", "message": reason})
    for record in event.records:
        try:
            _link_one(run, record)
        except _Skip as skip:
            run.skipped.append({"key": skip.key, "reason": skip.reason})
        except AppError as error:
            _app_error(run, record, error)
        except OssError as error:
            code, message = getattr(error, "code", type(error).__name__), str(getattr(error, "message", error))
            logger.error("upload.failed", key=record.key, code=code, message=message)
            run.failed.append({"key": record.key, "code": code, "message": message})
    if run.failed:
        logger.error("upload.invocation_failed", failed=len(run.failed), delivered=len(run.links))
        raise DeliveryFailed(f"{len(run.failed)} of {len(event.records) + len(event.invalid)} record(s) failed: "
                             + json.dumps(run.failed, ensure_ascii=False)[:800])
    return {"links": run.links, "skipped": run.skipped, "failed": run.failed}


def _app_error(run: _Invocation, record: OssObjectRecord, error: AppError) -> None:
    logger = log.get_logger()
    if error.status >= 500:  # a dependency or a credential: the platform's retry may succeed
        logger.error("upload.failed", key=record.key, code=error.code, message=error.message)
        run.failed.append({"key": record.key, "code": error.code, "message": error.message})
        return
    # the record itself can never succeed (e.g. a key OSS would refuse): skip it, do not retry forever
    logger.warning("upload.unprocessable_record", key=record.key, code=error.code, message=error.message)
    run.skipped.append({"key": record.key, "reason": "unprocessable", "message": error.message})


def _link_one(run: _Invocation, record: OssObjectRecord) -> None:
    logger = log.get_logger()
    reason = _skip_reason(record, run.runtime)
    if reason:
        logger.info("upload.skipped", key=record.key, event_name=record.event_name, reason=reason)
        raise _Skip(record.key, reason)
    found = _resolve(run.client, record)
    if found is None:
        logger.warning("upload.object_missing", key=record.key, etag=record.etag)
        raise _Skip(record.key, "object_missing")
    key, info = found
    if record.etag and info.etag.upper() != record.etag:
        logger.info("upload.stale_event", key=key, event_etag=record.etag, current_etag=info.etag)
        raise _Skip(key, "stale_etag")
    signer = run.signer_for_links()
    try:
        link, reused = _link(run, signer, record, key, info)
    except InvalidKey as error:  # permanent (e.g. a V1-ambiguous key): retrying cannot help
        logger.warning("upload.unsignable_key", key=key, message=error.message)
        raise _Skip(key, "unsignable_key") from None
    _deliver(link, run.runtime)
    run.links.append({"key": key, "link_record": link["link_record"], "reused": reused})
    logger.info("upload.link", key=key, size=link["size"], etag=link["etag"], expires_at=link["expires_at"],
                clamped=link["clamped"], clamp_reason=link["clamp_reason"],
                idempotency_key=link["idempotency_key"], link_record=link["link_record"])


def _skip_reason(record: OssObjectRecord, runtime: Runtime) -> str | None:
    if not record.creates_object:
        return "not_a_new_object"
    if record.bucket != runtime.settings.oss.bucket:
        return "other_bucket"
    # Filters see every candidate form of the key: an encoded key under _links/ is still ours.
    for candidate in record.key_candidates():
        if runtime.key_filter.excluded_prefix(candidate):
            return "own_output"
    return runtime.key_filter.reason(record.key, record.size)


def _resolve(client: OssClient, record: OssObjectRecord) -> tuple[str, ObjectInfo] | None:
    for candidate in record.key_candidates():
        try:
            return candidate, client.head_object(candidate)
        except OssError as error:
            if error.status != 404:
                raise
    return None


def _link(run: _Invocation, signer: Signer, record: OssObjectRecord, key: str,
          info: ObjectInfo) -> tuple[dict[str, Any], bool]:
    """(the link record, whether it was reused) for the object version ``info``."""
    settings = run.runtime.settings
    record_key = link_record_key(settings.upload.links_prefix, key)
    existing = _existing_link(run.client, record_key, info.etag)
    if existing is not None:
        return existing, True
    now = datetime.now(timezone.utc)
    presigned = signer.presign(key, expires=settings.upload.expires, now=signing_time(record.event_time, now))
    link = link_record(bucket=settings.oss.bucket, key=key, info=info, presigned=presigned,
                       signature_version=signer.version, event_name=record.event_name,
                       event_time=record.event_time,
                       idempotency_key=idempotency_key(settings.oss.bucket, key, info.etag), record_key=record_key)
    run.client.put_object(record_key, record_body(link), content_type="application/json; charset=utf-8")
    return link, False


def _existing_link(client: OssClient, record_key: str, etag: str) -> dict[str, Any] | None:
    """The stored record for this object version if it is still worth handing out, else None."""
    try:
        response = client.get_object(record_key, max_bytes=RECORD_READ_LIMIT)
    except OssError as error:
        if error.status in (404, 403):  # 403: a role without read on _links/ simply re-signs
            return None
        raise
    return reusable_record(response.body, etag, datetime.now(timezone.utc))


def _deliver(link: dict[str, Any], runtime: Runtime) -> None:
    if runtime.webhook is None:
        return
    payload = {"type": "object.link", **{k: v for k, v in link.items() if not k.startswith("_")}}
    started = time.monotonic()
    try:
        delivery = runtime.webhook.deliver(payload, link["idempotency_key"])
    except WebhookError as error:
        raise DeliveryFailed(f"webhook: {error.message}") from None
    log.get_logger().info("upload.webhook", key=link["key"], status=delivery.status, attempts=delivery.attempts,
                          seconds=round(time.monotonic() - started, 3))
