"""on_upload: a signed link for every new object, delivered to the link record, the webhook and the log.

OSS trigger -> for each record of the event (several per event, all processed even if one fails):

1. skip what is not a finished new object (multipart steps, removals), another bucket, the functions'
   own output (LINKS_PREFIX, EXPORT_PREFIX: never triggers itself) and what the UPLOAD_* filters reject;
2. HEAD the object (content type, current ETag). The key is used as delivered; only if that object does
   not exist are its URL-decoded forms tried (whether the cloud encodes keys is unconfirmed), so the
   store resolves the ambiguity. A record whose ETag no longer matches is stale (a newer upload has its
   own event) and is skipped;
3. idempotency under at-least-once delivery: if the link record already exists for this ETag and is
   still valid, it is reused as is; otherwise the URL is signed at a time derived from the event time
   (``shared.export.signing_time``), so a duplicate event produces the same URL and record;
4. deliver: link record ``<LINKS_PREFIX><key>.json``, webhook (``Idempotency-Key`` =
   sha256(bucket, key, etag)), one log line (never the URL's signature).

Any transient failure (OSS, credentials, the webhook: a 5xx) makes the invocation raise after all records
were tried, so the platform retries the event; what already succeeded is reused on the retry. A record that
can never succeed (unreadable, a time out of range, a lone surrogate, a key OSS would refuse) is logged and
skipped: failing for it would have the platform deliver the same event again forever.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from shared import config, credentials
from shared import logging as log
from shared.errors import AppError, UpstreamError
from shared.events import InvalidEvent, OssObjectRecord, event_handler, parse_oss_event
from shared.export import KeyFilter, signing_time, url_signer
from shared.keys import InvalidKey
from shared.scoped_signing import prefixes_scope
from shared.signing import Signer
from shared.storage import ObjectInfo, OssClient, OssError
from shared.validity import format_utc, parse_utc
from shared.webhook import WebhookClient, WebhookError, idempotency_key

FUNCTION = "on_upload"
# A stored link record is reused while at least this share of its validity remains.
REUSE_MIN_REMAINING_SHARE = 0.5


class DeliveryFailed(UpstreamError):
    code = "LinkDeliveryFailed"


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


def process(event: bytes | str | dict[str, Any], context: Any, runtime: Runtime) -> dict[str, Any]:
    logger = log.get_logger()
    settings = runtime.settings
    try:
        parsed = parse_oss_event(event)
    except InvalidEvent as error:  # permanent: the platform would deliver the same bytes again and again
        logger.error("upload.invalid_event", code=error.code, message=error.message)
        return {"status": "invalid", "code": error.code, "message": error.message}
    failures: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    for index, problem in parsed.invalid:  # permanent too: logged and skipped, the other records still count
        logger.error("upload.invalid_record", index=index, reason=problem)
        skipped.append({"index": index, "reason": "invalid_record", "message": problem})
    function_creds = credentials.function_credentials_for(context, settings)
    client = OssClient.from_settings(settings, lambda: function_creds)
    signer: Signer | None = None
    links: list[dict[str, Any]] = []
    for record in parsed.records:
        reason = _skip_reason(record, runtime)
        if reason:
            logger.info("upload.skipped", key=record.key, event_name=record.event_name, reason=reason)
            skipped.append({"key": record.key, "reason": reason})
            continue
        try:
            found = _resolve(client, record)
            if found is None:
                logger.warning("upload.object_missing", key=record.key, etag=record.etag)
                skipped.append({"key": record.key, "reason": "object_missing"})
                continue
            key, info = found
            if record.etag and info.etag.upper() != record.etag:
                logger.info("upload.stale_event", key=key, event_etag=record.etag, current_etag=info.etag)
                skipped.append({"key": key, "reason": "stale_etag"})
                continue
            if signer is None:  # one signer per invocation: the fast path, and one credentials read
                signer = url_signer(settings, credentials.signing_credentials(
                    context, settings, prefixes_scope(settings.upload.prefixes)))  # links only for these
            try:
                link = _link(client, signer, record, key, info, runtime)
            except InvalidKey as error:  # permanent (e.g. a V1-ambiguous key): retrying cannot help
                logger.warning("upload.unsignable_key", key=key, message=error.message)
                skipped.append({"key": key, "reason": "unsignable_key"})
                continue
            _deliver(link, runtime)
            links.append({"key": key, "link_record": link["link_record"], "reused": link.pop("_reused")})
            logger.info("upload.link", key=key, size=link["size"], etag=link["etag"],
                        expires_at=link["expires_at"], clamped=link["clamped"], clamp_reason=link["clamp_reason"],
                        idempotency_key=link["idempotency_key"], link_record=link["link_record"])
        except AppError as error:
            if error.status >= 500:  # a dependency or a credential: the platform's retry may succeed
                logger.error("upload.failed", key=record.key, code=error.code, message=error.message)
                failures.append({"key": record.key, "code": error.code, "message": error.message})
                continue
            # the record itself can never succeed (e.g. a key OSS would refuse): skip it, do not retry forever
            logger.warning("upload.unprocessable_record", key=record.key, code=error.code, message=error.message)
            skipped.append({"key": record.key, "reason": "unprocessable", "message": error.message})
        except OssError as error:
            code = getattr(error, "code", type(error).__name__)
            logger.error("upload.failed", key=record.key, code=code, message=str(getattr(error, "message", error)))
            failures.append({"key": record.key, "code": code, "message": str(getattr(error, "message", error))})
    summary = {"links": links, "skipped": skipped, "failed": failures}
    if failures:
        logger.error("upload.invocation_failed", failed=len(failures), delivered=len(links))
        raise DeliveryFailed(f"{len(failures)} of {len(parsed.records) + len(parsed.invalid)} record(s) failed: "
                             + json.dumps(failures, ensure_ascii=False)[:800])
    return summary


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


def _link(client: OssClient, signer: Signer, record: OssObjectRecord, key: str, info: ObjectInfo,
          runtime: Runtime) -> dict[str, Any]:
    settings = runtime.settings
    record_key = link_record_key(settings.upload.links_prefix, key)
    existing = _existing_link(client, record_key, info.etag)
    if existing is not None:
        existing["_reused"] = True
        return existing
    now = datetime.now(timezone.utc)
    presigned = signer.presign(key, expires=settings.upload.expires, now=signing_time(record.event_time, now))
    link = {
        "bucket": settings.oss.bucket,
        "key": key,
        "url": presigned.url,
        "expires_at": format_utc(presigned.expires_at),
        "expires_in": presigned.expires_in,
        "clamped": presigned.clamped,
        "clamp_reason": presigned.clamp_reason,
        "signed_at": format_utc(presigned.validity.signed_at),
        "signature_version": signer.version,
        "size": info.size,
        "etag": info.etag.upper(),
        "content_type": info.content_type,
        "last_modified": format_utc(info.last_modified),
        "event_name": record.event_name,
        "event_time": format_utc(record.event_time),
        "idempotency_key": idempotency_key(settings.oss.bucket, key, info.etag),
        "link_record": record_key,
    }
    body = json.dumps(link, ensure_ascii=False, sort_keys=True, indent=1).encode("utf-8")
    client.put_object(record_key, body, content_type="application/json; charset=utf-8")
    link["_reused"] = False
    return link


MAX_KEY_BYTES = 1023


def link_record_key(links_prefix: str, key: str) -> str:
    """`<links>/<key>.json`; a key too long for that gets `<links>/_long/<sha256 of key>.json` (the record
    names the key), so every object gets a record instead of failing on every retry."""
    record_key = f"{links_prefix}{key}.json"
    if len(record_key.encode("utf-8")) <= MAX_KEY_BYTES:
        return record_key
    return f"{links_prefix}_long/{hashlib.sha256(key.encode('utf-8')).hexdigest()}.json"


def _existing_link(client: OssClient, record_key: str, etag: str) -> dict[str, Any] | None:
    """The stored record for this object version if it is still worth handing out, else None."""
    try:
        response = client.get_object(record_key, max_bytes=64 * 1024)
    except OssError as error:
        if error.status in (404, 403):  # 403: a role without read on _links/ simply re-signs
            return None
        raise
    try:
        stored = json.loads(response.body)
        if stored.get("etag", "").upper() != etag.upper():
            return None
        expires_at = parse_utc(stored["expires_at"])
        remaining = (expires_at - datetime.now(timezone.utc)).total_seconds()
        if remaining < REUSE_MIN_REMAINING_SHARE * int(stored["expires_in"]):
            return None
    except (ValueError, KeyError, TypeError, AttributeError, OverflowError):
        return None  # unreadable: overwrite it
    return stored


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


# FC entry point: handler(event, context)
handler = event_handler(FUNCTION, Runtime.from_settings)(process)
