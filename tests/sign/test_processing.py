"""``process``: only allow-listed operations whose parameters cannot name another object (400 otherwise)."""

from __future__ import annotations

import base64
from urllib.parse import parse_qs, urlsplit

import pytest

from functions.sign.handler import handler
from shared.config import DEFAULT_PROCESS_OPERATIONS, load
from shared.processing import ProcessNotAllowed, check_process
from tests.sign.helpers import body_of, context, event, install_env

DEFAULT = frozenset(DEFAULT_PROCESS_OPERATIONS.split(","))
WATERMARK_OF_BOB = base64.urlsafe_b64encode(b"users/bob/photo.png").decode().rstrip("=")


@pytest.mark.parametrize("value", [
    "image/resize,w_100", "image/resize,m_lfit,w_100,h_100/quality,q_80/format,png", "image/info",
    "image/crop,x_10,y_10,w_200,h_200,g_se", "image/rotate,90", "image/bright,-50", "IMAGE/Resize,w_1",
])
def test_operations_that_name_no_object_are_accepted(value: str) -> None:
    assert check_process(value, DEFAULT) == value


@pytest.mark.parametrize("value", [
    f"image/watermark,image_{WATERMARK_OF_BOB}", f"image/resize,w_100/watermark,image_{WATERMARK_OF_BOB}",
    "image/watermark,text_aGVsbG8", "style/thumbnail", "image/resize,w_100|sys/saveas,o_eA,b_eA",
    "video/snapshot,t_1000", "doc/preview", "image/unknownop", "image/", "image", "", "/resize,w_1",
    "image/resize,w_100//format,png", "image/resize,w_1%2Fwatermark", "image/resize,w 1", "image/resize,,w_1",
    "image/resize,w_" + "9" * 70, "image/resize," + "w_1," * 200, "image/resize,image_dXNlcnMvYm9i",
])
def test_everything_else_is_refused(value: str) -> None:
    with pytest.raises(ProcessNotAllowed):
        check_process(value, DEFAULT)


def test_an_operator_may_allow_watermarks_but_never_object_parameters() -> None:
    allowed = DEFAULT | {"image/watermark"}
    assert check_process("image/watermark,text_aGVsbG8,size_30", allowed)
    with pytest.raises(ProcessNotAllowed):
        check_process(f"image/watermark,IMAGE_{WATERMARK_OF_BOB}", allowed)
    with pytest.raises(ProcessNotAllowed):
        check_process("image/resize,w_1", frozenset())  # empty list: processing off


def test_the_allow_list_is_a_configured_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    install_env(monkeypatch, URL_PROCESS_OPERATIONS="image/resize, IMAGE/Format")
    assert load("sign").urls.process_operations == frozenset({"image/resize", "image/format"})
    install_env(monkeypatch, URL_PROCESS_OPERATIONS="image/resize,watermark")
    with pytest.raises(Exception, match="URL_PROCESS_OPERATIONS"):
        load("sign")


def test_sign_answers_a_clear_400_and_signs_an_allowed_process(monkeypatch: pytest.MonkeyPatch) -> None:
    install_env(monkeypatch)
    refused = handler(event("GET", "/sign", query={"key": "exampledir/a.png",
                                                   "process": f"image/watermark,image_{WATERMARK_OF_BOB}"}),
                      context())
    assert refused["statusCode"] == 400
    error = body_of(refused)
    assert error["code"] == "ProcessNotAllowed" and "image/watermark" in error["message"] and error["requestId"]
    batch = body_of(handler(event("POST", "/sign", body={"keys": [
        "exampledir/a.png", {"key": "exampledir/b.png", "process": "style/x"}], "process": "image/resize,w_10"}),
        context()))
    assert batch["failed"] == 1 and batch["results"][1]["error"]["code"] == "ProcessNotAllowed"
    url = batch["results"][0]["url"]
    assert parse_qs(urlsplit(url).query)["x-oss-process"] == ["image/resize,w_10"]
