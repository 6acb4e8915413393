"""Adversarial review of /download proxy links (shared/links.py): one MAC, one meaning."""

from __future__ import annotations

import time
from urllib.parse import parse_qsl, urlsplit

import pytest

from shared import links
from shared.errors import AppError

SECRET = "review-link-secret-0123456789abcdef"
BASE = "https://api.example.test"


def _query(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))


def test_an_option_value_cannot_forge_another_option_line() -> None:
    """canonical = prefix \\n key \\n exp \\n name=value lines: a newline inside a value would let one
    link's MAC also sign a different set of options (here: a filename the issuer never chose)."""
    exp = int(time.time()) + 600
    smuggled = {"disposition": "attachment\nfilename=evil.html"}
    honest = {"disposition": "attachment", "filename": "evil.html"}
    try:
        forged_sig = _query(links.make_link(BASE, "users/a/x", secret=SECRET, expires_at=exp, options=smuggled))["sig"]
    except AppError as error:
        assert error.status == 400
        return
    honest_sig = links.link_signature(SECRET, "users/a/x", exp, honest)
    assert forged_sig != honest_sig, "two different option sets share one MAC"


@pytest.mark.parametrize("value", ["a\nb", "a\rb", "a\x00b", "a\x7fb"])
def test_control_characters_in_link_options_are_refused(value: str) -> None:
    with pytest.raises(AppError) as error:
        links.make_link(BASE, "users/a/x", secret=SECRET, expires_at=int(time.time()) + 60,
                        options={"filename": value})
    assert error.value.status == 400
    query = {"exp": str(int(time.time()) + 60), "filename": value,
             "sig": links.link_signature(SECRET, "users/a/x", int(time.time()) + 60, {"filename": value})}
    with pytest.raises(links.InvalidLink):
        links.verify_link("users/a/x", query, secret=SECRET, now=time.time())


def test_expiry_boundaries_and_tampering() -> None:
    now = 1_800_000_000
    url = links.make_link(BASE, "users/a/x y", secret=SECRET, expires_at=now, options={"filename": "r.pdf",
                                                                                      "disposition": "inline"})
    query = _query(url)
    assert links.verify_link("users/a/x y", query, secret=SECRET, now=now) == {"disposition": "inline",
                                                                             "filename": "r.pdf"}
    with pytest.raises(links.LinkExpired):
        links.verify_link("users/a/x y", query, secret=SECRET, now=now + 0.001)
    for changed in ({"exp": str(now + 1)}, {"exp": f"0{now}x"}, {"filename": "r.pdf.html"},
                    {"disposition": "attachment"}, {"x-oss-process": "a"}, {"sig": query["sig"].upper()}, {"sig": ""}):
        with pytest.raises(links.InvalidLink):
            links.verify_link("users/a/x y", {**query, **changed}, secret=SECRET, now=now)
    # dropping an option changes the MAC too
    without = {name: value for name, value in query.items() if name != "filename"}
    with pytest.raises(links.InvalidLink):
        links.verify_link("users/a/x y", without, secret=SECRET, now=now)
    with pytest.raises(links.InvalidLink):
        links.verify_link("users/a/x y ", query, secret=SECRET, now=now)
