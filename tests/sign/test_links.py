"""/download proxy links: HMAC over key, expiry and options; valid, expired, tampered, other key."""

from __future__ import annotations

import time
from urllib.parse import parse_qsl, unquote, urlsplit

import pytest

from shared import links
from shared.errors import InvalidParameter

SECRET = "link-secret-for-tests-0123456789abcdef"
BASE = "https://api.example.test"


def split(link: str) -> tuple[str, dict[str, str]]:
    parts = urlsplit(link)
    assert parts.path.startswith("/download/")
    return unquote(parts.path[len("/download/"):]), dict(parse_qsl(parts.query, keep_blank_values=True))


@pytest.mark.parametrize("key", ["exampledir/a.txt", "exampledir/a b+c.txt", "exampledir/100%.txt",
                                 "exampledir/#?x", "exampledir/\u62a5\u544a.txt", "exampledir//double",
                                 "exampledir/../x"])
def test_a_link_round_trips(key: str) -> None:
    expires_at = int(time.time()) + 600
    link = links.make_link(BASE, key, secret=SECRET, expires_at=expires_at,
                           options={"disposition": "attachment", "filename": "\u62a5\u544a & co.pdf"})
    assert link.startswith(BASE + "/download/")
    assert "+" not in link.split("?")[0] and "#" not in link and link.count("?") == 1
    decoded_key, query = split(link)
    assert decoded_key == key
    options = links.verify_link(decoded_key, query, secret=SECRET, now=time.time())
    assert options == {"disposition": "attachment", "filename": "\u62a5\u544a & co.pdf"}


def make(key: str = "exampledir/a.txt", ttl: int = 600, **options: str) -> dict[str, str]:
    link = links.make_link(BASE, key, secret=SECRET, expires_at=int(time.time()) + ttl, options=options)
    return split(link)[1]


def test_expired_links_are_refused() -> None:
    query = make(ttl=-1)
    with pytest.raises(links.LinkExpired) as error:
        links.verify_link("exampledir/a.txt", query, secret=SECRET, now=time.time())
    assert error.value.status == 403
    # valid until the second it names
    query = make(ttl=100)
    assert links.verify_link("exampledir/a.txt", query, secret=SECRET, now=int(query["exp"])) == {}


@pytest.mark.parametrize("tamper", [
    lambda q: {**q, "exp": str(int(q["exp"]) + 3600)},
    lambda q: {**q, "sig": q["sig"][:-2] + ("AA" if not q["sig"].endswith("AA") else "BB")},
    lambda q: {**q, "disposition": "inline"},
    lambda q: {k: v for k, v in q.items() if k != "filename"},
    lambda q: {**q, "filename": "other.pdf"},
    lambda q: {**q, "extra": "1"},
    lambda q: {k: v for k, v in q.items() if k != "sig"},
    lambda q: {**q, "sig": ""},
    lambda q: {**q, "sig": "\u00e9" * 43},
    lambda q: {**q, "exp": "12ab"},
    lambda q: {**q, "exp": "9" * 40},
], ids=["exp", "sig", "disposition", "drop-filename", "filename", "extra-param", "no-sig", "empty-sig",
        "non-ascii-sig", "exp-letters", "exp-huge"])
def test_tampered_links_are_refused(tamper) -> None:  # type: ignore[no-untyped-def]
    query = make(disposition="attachment", filename="a.pdf")
    with pytest.raises(links.InvalidLink) as error:
        links.verify_link("exampledir/a.txt", tamper(query), secret=SECRET, now=time.time())
    assert error.value.status == 403


def test_a_link_is_bound_to_its_key_and_secret() -> None:
    query = make("exampledir/a.txt")
    for other in ("exampledir/b.txt", "exampledir/a.txt ", "Exampledir/a.txt", "exampledir/a.tx"):
        with pytest.raises(links.InvalidLink):
            links.verify_link(other, query, secret=SECRET, now=time.time())
    with pytest.raises(links.InvalidLink):
        links.verify_link("exampledir/a.txt", query, secret=SECRET + "x", now=time.time())
    with pytest.raises(links.InvalidLink):
        links.verify_link("exampledir/a.txt", query, secret="", now=time.time())


def test_the_canonical_string_separates_fields() -> None:
    # key "a\n1" with exp 2 must not collide with key "a" and exp "1\n2"-like shapes: keys cannot hold newlines
    one = links.link_signature(SECRET, "k", 100, {"filename": "x"})
    two = links.link_signature(SECRET, "k", 100, {"disposition": "x"})
    assert one != two
    assert links.link_signature(SECRET, "k", 100, {}) != links.link_signature(SECRET, "k", 101, {})


def test_making_links_needs_configuration_and_valid_input() -> None:
    with pytest.raises(InvalidParameter):
        links.make_link(BASE, "k", secret="", expires_at=1)
    with pytest.raises(InvalidParameter):
        links.make_link("", "k", secret=SECRET, expires_at=1)
    with pytest.raises(InvalidParameter):
        links.make_link(BASE, "k", secret=SECRET, expires_at=1, options={"process": "x"})
    with pytest.raises(Exception) as error:
        links.make_link(BASE, "/abs", secret=SECRET, expires_at=1)
    assert getattr(error.value, "status", None) == 400
