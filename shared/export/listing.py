"""The export's reading side: pages of one prefix listed ahead of the signing, and the rows of one page signed and
formatted."""

from __future__ import annotations

from collections.abc import Generator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from shared.export.model import ExportOptions, KeyFilter, PartBuffer, format_lines, format_time
from shared.keys import InvalidKey
from shared.signing import Signer
from shared.storage import ListPage, ObjectInfo, OssClient

__all__ = ["AFTER_PREFIX", "PAGE_SIZE", "Walk", "pages", "signed_lines"]

PAGE_SIZE = 1000
# Sorts after every key that starts with a prefix (keys are compared as UTF-8 bytes = code points).
AFTER_PREFIX = "\U0010ffff"


@dataclass
class Walk:
    """One invocation's walk over the listing: what it carries from page to page."""

    options: ExportOptions
    signer: Signer
    signed_at: datetime
    expires_in: int
    expires_at: str
    key_filter: KeyFilter
    buffer: PartBuffer
    start_position: tuple[int, str | None]
    listed: int
    started: float
    last_progress: float
    rows: int = 0  # written in this invocation
    unsignable: int = 0


def pages(client: OssClient, prefetcher: ThreadPoolExecutor, prefix: str, start_after: str | None,
          key_filter: KeyFilter) -> Generator[tuple[ListPage, str | None], None, None]:
    """Pages of one prefix, the next one fetched in the background while this one is signed.

    Yields (page, jump): ``jump`` is set when the page ends inside the functions' own output (possibly
    millions of link records); the listing then continues after that prefix instead of paging through it.
    """
    def fetch(token: str | None, after: str | None) -> ListPage:
        return client.list_objects_v2(prefix, continuation_token=token, start_after=None if token else after,
                                      max_keys=PAGE_SIZE)

    future: Future[ListPage] | None = prefetcher.submit(fetch, None, start_after)
    while future is not None:
        page = future.result()
        last = page.objects[-1].key if page.objects else None
        excluded = key_filter.excluded_prefix(last) if last is not None else None
        jump = excluded + AFTER_PREFIX if excluded is not None and page.is_truncated else None
        if jump is not None:
            future = prefetcher.submit(fetch, None, jump)
        elif page.is_truncated and page.next_continuation_token:
            future = prefetcher.submit(fetch, page.next_continuation_token, None)
        else:
            future = None
        yield page, jump


def signed_lines(signer: Signer, objects: list[ObjectInfo], signed_at: datetime, expires: int, expires_at: str,
                 fmt: str) -> tuple[list[str], list[str], int]:
    """(formatted lines, their keys, count of keys the signer refused) for one page."""
    if not objects:
        return [], [], 0
    try:
        urls = [p.url for p in signer.presign_many([o.key for o in objects], expires=expires, now=signed_at)]
        keep = objects
    except InvalidKey:  # a key the signer refuses (control characters): leave it out, count it
        keep, urls = [], []
        for obj in objects:
            try:
                urls.append(signer.presign(obj.key, expires=expires, now=signed_at).url)
                keep.append(obj)
            except InvalidKey:
                continue
    rows = [(o.key, url, o.size, o.etag, format_time(o.last_modified), expires_at)
            for o, url in zip(keep, urls, strict=True)]
    return format_lines(rows, fmt), [o.key for o in keep], len(objects) - len(keep)
