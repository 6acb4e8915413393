"""OSS-trigger events: build the Function Compute event JSON and deliver it at least once.

Each matching subscriber gets the event from a background dispatcher thread; a failing delivery is
retried a bounded number of times with a short backoff (so a subscriber may see an event twice,
never zero times unless it keeps failing).
"""

from __future__ import annotations

import fnmatch
import json
import logging
import queue
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

log = logging.getLogger(__name__)

EventCallback = Callable[[dict[str, Any]], None]
DEFAULT_EVENTS = ("oss:ObjectCreated:*",)


@dataclass(frozen=True)
class Subscription:
    deliver: EventCallback
    bucket: str
    prefix: str = ""
    suffix: str = ""
    events: tuple[str, ...] = DEFAULT_EVENTS
    rule_id: str = ""

    def matches(self, bucket: str, key: str, event_name: str) -> bool:
        return (
            bucket == self.bucket
            and key.startswith(self.prefix)
            and key.endswith(self.suffix)
            and any(fnmatch.fnmatchcase("oss:" + event_name, pattern) for pattern in self.events)
        )


@dataclass(frozen=True)
class ObjectEvent:
    event_name: str  # e.g. "ObjectCreated:PutObject" (no "oss:" prefix, as FC delivers it)
    bucket: str
    key: str
    size: int
    delta_size: int
    etag: str  # uppercase hex, no quotes
    source_ip: str
    request_id: str
    principal_id: str
    time: float


def fc_event(event: ObjectEvent, *, region: str, account_id: str, rule_id: str) -> dict[str, Any]:
    event_time = datetime.fromtimestamp(event.time, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return {
        "events": [
            {
                "eventName": event.event_name,
                "eventSource": "acs:oss",
                "eventTime": event_time,
                "eventVersion": "1.0",
                "oss": {
                    "bucket": {
                        "arn": f"acs:oss:{region}:{account_id}:{event.bucket}",
                        "name": event.bucket,
                        "ownerIdentity": account_id,
                    },
                    "object": {
                        "deltaSize": event.delta_size,
                        "eTag": event.etag,
                        "key": event.key,
                        "size": event.size,
                    },
                    "ossSchemaVersion": "1.0",
                    "ruleId": rule_id,
                },
                "region": region,
                "requestParameters": {"sourceIPAddress": event.source_ip},
                "responseElements": {"requestId": event.request_id},
                "userIdentity": {"principalId": event.principal_id},
            }
        ]
    }


def http_deliverer(url: str, timeout: float = 10.0) -> EventCallback:
    """A callback that POSTs the event JSON to ``url``; any non-2xx answer counts as a failure."""

    if not url.startswith(("http://", "https://")):
        raise ValueError("subscriber URL must be http(s)")

    def deliver(payload: dict[str, Any]) -> None:
        request = urllib.request.Request(  # noqa: S310 - scheme checked above
            url, data=json.dumps(payload).encode(), method="POST",
            headers={"Content-Type": "application/json", "x-fc-trigger-type": "oss"},
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - scheme checked above
            if not 200 <= response.status < 300:
                raise RuntimeError(f"subscriber answered HTTP {response.status}")

    return deliver


class EventDispatcher:
    def __init__(self, *, region: str, account_id: str, attempts: int = 5, backoff: float = 0.2) -> None:
        self.region = region
        self.account_id = account_id
        self.attempts = attempts
        self.backoff = backoff
        self._subscriptions: list[Subscription] = []
        self._lock = threading.Lock()
        self._queue: queue.Queue[tuple[Subscription, dict[str, Any]] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._pending = 0
        self._idle = threading.Condition()

    def subscribe(self, deliver: EventCallback, *, bucket: str, prefix: str = "", suffix: str = "",
                  events: Sequence[str] = DEFAULT_EVENTS) -> Subscription:
        subscription = Subscription(deliver, bucket, prefix, suffix, tuple(events), uuid.uuid4().hex)
        with self._lock:
            self._subscriptions.append(subscription)
        return subscription

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="oss-events", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=10)
            self._thread = None

    def publish(self, event: ObjectEvent) -> None:
        with self._lock:
            targets = [s for s in self._subscriptions if s.matches(event.bucket, event.key, event.event_name)]
        for subscription in targets:
            payload = fc_event(event, region=self.region, account_id=self.account_id,
                               rule_id=subscription.rule_id)
            with self._idle:
                self._pending += 1
            self._queue.put((subscription, payload))

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until every queued event was delivered or given up on (for tests)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout=timeout)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            subscription, payload = item
            try:
                self._deliver(subscription, payload)
            finally:
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()

    def _deliver(self, subscription: Subscription, payload: dict[str, Any]) -> None:
        for attempt in range(1, self.attempts + 1):
            try:
                subscription.deliver(payload)
                return
            except Exception as exc:  # a subscriber's failure must never kill the dispatcher
                log.warning("event delivery failed (attempt %d/%d): %s", attempt, self.attempts,
                            type(exc).__name__)
                if attempt < self.attempts:
                    time.sleep(self.backoff * attempt)
