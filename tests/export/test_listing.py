"""The export's reading side on its own: the pager (prefetch, continuation tokens, the jump over the functions'
own output) and a page's rows (keys the signer refuses are left out and counted)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Any

from shared.export.listing import AFTER_PREFIX, pages, signed_lines
from shared.export.model import KeyFilter, read_rows
from shared.signing import Credentials, Endpoint, Signer
from shared.storage import ListPage, ObjectInfo

NOW = datetime(2026, 12, 1, 12, 0, 0, tzinfo=timezone.utc)


def obj(key: str) -> ObjectInfo:
    return ObjectInfo(key=key, size=len(key), etag="E" + str(len(key)), last_modified=NOW)


class ListingStore:
    """ListObjectsV2 over a sorted key list, as OSS answers it: start-after, a token, max-keys (records calls)."""

    def __init__(self, keys: list[str], page_size: int) -> None:
        self.keys, self.page_size = sorted(keys), page_size
        self.calls: list[dict[str, Any]] = []

    def list_objects_v2(self, prefix: str, *, continuation_token: str | None, start_after: str | None,
                        max_keys: int) -> ListPage:
        self.calls.append({"token": continuation_token, "start_after": start_after})
        after = continuation_token or start_after or ""
        matching = [k for k in self.keys if k.startswith(prefix) and k > after]
        page = matching[:min(max_keys, self.page_size)]
        truncated = len(matching) > len(page)
        return ListPage([obj(k) for k in page], [], page[-1] if truncated else None, truncated)


def walk(store: ListingStore, key_filter: KeyFilter, start_after: str | None = None) -> list[tuple[list[str], Any]]:
    with ThreadPoolExecutor(max_workers=1) as prefetcher:
        return [([o.key for o in page.objects], jump)
                for page, jump in pages(store, prefetcher, "", start_after, key_filter)]  # type: ignore[arg-type]


def test_pages_follow_continuation_tokens_to_the_end() -> None:
    store = ListingStore([f"k{i:02d}" for i in range(7)], page_size=3)
    assert walk(store, KeyFilter()) == [(["k00", "k01", "k02"], None), (["k03", "k04", "k05"], None),
                                        (["k06"], None)]
    assert [c["token"] for c in store.calls] == [None, "k02", "k05"]


def test_a_page_ending_inside_the_functions_output_jumps_over_the_rest_of_it() -> None:
    keys = ["a1", "a2", *[f"_links/{i:03d}.json" for i in range(50)], "b1", "b2"]
    store = ListingStore(keys, page_size=3)
    listed = walk(store, KeyFilter(excluded=("_links/",)))
    assert listed[0] == (["_links/000.json", "_links/001.json", "_links/002.json"], "_links/" + AFTER_PREFIX)
    assert listed[1] == (["a1", "a2", "b1"], None)  # the 47 other link records were never listed
    assert store.calls[1] == {"token": None, "start_after": "_links/" + AFTER_PREFIX}
    assert sum(len(page) for page, _jump in listed) == 3 + 4


def test_a_listing_resumes_after_its_position() -> None:
    store = ListingStore(["a", "b", "c", "d"], page_size=10)
    assert walk(store, KeyFilter(), start_after="b") == [(["c", "d"], None)]


def test_keys_the_signer_refuses_are_left_out_and_counted() -> None:
    signer = Signer(Credentials("AKID", "secret"), Endpoint.for_region("cn-hangzhou"), "bucket", region="cn-hangzhou")
    objects = [obj("a.txt"), obj("bad\x01key"), obj("c, d.txt")]
    lines, keys, refused = signed_lines(signer, objects, NOW, 600, "2026-12-01T12:10:00Z", "csv")
    assert keys == ["a.txt", "c, d.txt"] and refused == 1
    rows = read_rows(("key,url,size,etag,last_modified,expires_at\r\n" + "".join(lines)).encode(), "csv")
    assert [r["key"] for r in rows] == keys
    assert [r["url"] for r in rows] == [signer.presign(k, expires=600, now=NOW).url for k in keys]
    assert signed_lines(signer, [], NOW, 600, "x", "csv") == ([], [], 0)
