"""The export's event parsing: continuation events and malformed events (answered as InvalidEvent)."""

from __future__ import annotations

from typing import Any

import pytest

from shared.events import InvalidEvent
from shared.export.request import parse_request

NO_SETTINGS: Any = None  # neither a continuation nor a malformed event reads the settings
CONTINUATION = "continuation needs export_id (as export ids are written) and hop (1..1000)"


@pytest.mark.parametrize("event", [b'{"continuation": {"export_id": "nightly-20260101T000000Z", "hop": 3}}',
                                   '{"continuation": {"export_id": "nightly-20260101T000000Z", "hop": 3}}',
                                   {"continuation": {"export_id": "nightly-20260101T000000Z", "hop": 3}}])
def test_a_continuation_names_the_export_and_its_hop(event):
    request = parse_request(event, NO_SETTINGS)
    assert (request.export_id, request.hop, request.claimant, request.options) == (
        "nightly-20260101T000000Z", 3, "hop-3", None)


@pytest.mark.parametrize(("event", "message"), [
    (b"not json", "the export event is not valid JSON"),
    (b"\xff\xfe", "the export event is not valid JSON"),
    (b"[1, 2]", "the export event must be a JSON object"),
    ('"text"', "the export event must be a JSON object"),
    ({"continuation": {"export_id": 7, "hop": 1}}, CONTINUATION),
    ({"continuation": "x"}, CONTINUATION),
    ({"continuation": {"export_id": "a/../b", "hop": 1}}, CONTINUATION),
    ({"continuation": {"export_id": "nightly-\ud800", "hop": 1}}, CONTINUATION),
    ({"continuation": {"export_id": "nightly", "hop": True}}, CONTINUATION),
    ({"continuation": {"export_id": "nightly", "hop": -1}}, CONTINUATION),
    ({"continuation": {"export_id": "nightly", "hop": 10**30}}, CONTINUATION),
    (12, "the export event must be JSON text"),
    ("[" * 100000, "the export event is not valid JSON"),
    # Issue 10: these raised OverflowError / UnicodeEncodeError, so the platform retried them forever.
    ({"triggerName": "nightly", "triggerTime": "0001-01-01T00:00:00+01:00"},
     "the timer event's triggerTime is not an ISO 8601 time"),
    ({"triggerName": "nightly", "triggerTime": "9999-12-31T23:59:59-01:00"},
     "the timer event's triggerTime is not an ISO 8601 time"),
    ({"triggerName": "nightly", "triggerTime": "0001-01-08T00:00:00Z"},
     "the timer event's triggerTime is outside 1970-9000"),
    ({"triggerName": "night\udfffly", "triggerTime": "2026-01-01T00:00:00Z"},
     "the timer event holds a lone surrogate (not Unicode text)"),
])
def test_a_malformed_event_is_an_invalid_event_that_says_why(event, message):
    with pytest.raises(InvalidEvent) as raised:
        parse_request(event, NO_SETTINGS)
    assert raised.value.message == message
