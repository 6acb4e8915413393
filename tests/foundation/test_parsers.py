"""One reading each of yes/no, a choice and a JSON event: the configuration, the request parameters and the
three kinds of FC event (HTTP, OSS, timer) go through the same parser, so they cannot drift apart."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared import config, http
from shared.errors import BadRequest, InvalidParameter
from shared.events import InvalidEvent, TimerEvent, decode_event, json_object
from shared.url_options import _Reader

WORDS = ["1", "true", "TRUE", " yes ", "on", "0", "false", "No", "off", "", "  ", "2", "truthy", "nein", "y"]


@pytest.mark.parametrize("word", WORDS)
def test_a_variable_and_a_request_parameter_read_yes_and_no_alike(word: str) -> None:
    try:
        expected: Any = config.parse_boolean(word)
    except ValueError:
        expected = InvalidParameter
    reader = _Reader({"proxy": word}, "")
    if expected is InvalidParameter:
        with pytest.raises(InvalidParameter, match="proxy must be true or false"):
            reader.boolean("proxy", True)
    else:
        assert reader.boolean("proxy", not expected) is expected


@pytest.mark.parametrize(("word", "expected"), [("V4", "v4"), (" v1 ", "v1"), ("v2", None), ("", "v4")])
def test_a_variable_and_a_request_parameter_read_a_choice_alike(word: str, expected: str | None) -> None:
    reader = _Reader({"version": word}, "")
    if expected is None:
        with pytest.raises(InvalidParameter, match="version must be one of v4, v1"):
            reader.choice("version", ("v4", "v1"), "v4")
        with pytest.raises(ValueError, match="expected one of v4, v1"):
            config.parse_choice(word, ("v4", "v1"))
    else:
        assert reader.choice("version", ("v4", "v1"), "v4") == expected
        if word:  # an empty parameter means the default; an empty variable is the registry's default
            assert config.parse_choice(word, ("v4", "v1")) == expected


@pytest.mark.parametrize(("raw", "reason"), [
    (b"not json", "is not valid JSON"),
    (b"\xff\xfe{\x00}\x00", "is not valid JSON"),  # UTF-16: FC sends UTF-8, and json.loads(bytes) would guess
    ("[" * 100000, "is not valid JSON"),
    ("[1]", "must be a JSON object"),
    (12, "must be JSON text"),
])  # fmt: skip
def test_every_event_is_decoded_by_one_function_with_its_own_error(raw: object, reason: str) -> None:
    with pytest.raises(InvalidEvent, match=f"^the OSS event {reason}$"):
        decode_event(raw, "OSS")  # type: ignore[arg-type]  # wrong types are what is being tested
    with pytest.raises(BadRequest, match=f"^the HTTP event {reason}$"):
        http.parse_event(raw)
    with pytest.raises(BadRequest):
        json_object(raw, "x", BadRequest)


def test_a_deeply_nested_timer_payload_is_an_invalid_event_not_a_recursion_error() -> None:
    timer = TimerEvent(trigger_time=None, trigger_time_raw="", trigger_name="t",  # type: ignore[arg-type]
                       payload="[" * 100000)
    with pytest.raises(InvalidEvent, match="the timer payload is not valid JSON"):
        timer.payload_json()
    assert TimerEvent(trigger_time=None, trigger_time_raw="", trigger_name="t",  # type: ignore[arg-type]
                      payload=json.dumps({"a": 1})).payload_json() == {"a": 1}
