"""The export's event parsing: continuation events and malformed events (answered as InvalidEvent)."""

from __future__ import annotations

from typing import Any

import pytest

from functions.export.handler import parse_request
from shared.events import InvalidEvent

NO_SETTINGS: Any = None  # neither a continuation nor a malformed event reads the settings


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
    ({"continuation": {"export_id": 7, "hop": 1}}, "continuation needs export_id (string) and hop (integer)"),
    ({"continuation": "x"}, "continuation needs export_id (string) and hop (integer)"),
])
def test_a_malformed_event_is_an_invalid_event_that_says_why(event, message):
    with pytest.raises(InvalidEvent) as raised:
        parse_request(event, NO_SETTINGS)
    assert raised.value.message == message
