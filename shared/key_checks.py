"""Looking at keys before their URLs are signed: symlinks leaving the scope, and (optionally) missing keys.

With URL_SYMLINK_CHECK a symlink whose target is outside the caller's scope is refused (403
SymlinkOutOfScope, shared/symlinks.py); with SIGN_CHECK_EXISTS a missing key is a 404 rather than a dead
link. Uploads are never looked at: a PUT replaces whatever is there, links included. A batch settles most
keys with one listing per directory, and HEADs the rest in a small thread pool.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from shared import logging as log
from shared import symlinks
from shared.config import Settings
from shared.errors import AppError, NotFound
from shared.url_options import UrlSpec

if TYPE_CHECKING:
    from shared.storage import OssClient

HEAD_WORKERS = 8

Check = tuple[int, str, UrlSpec]  # (position in the batch, key, what it is signed with)


class KeyChecks:
    """The checks for one caller: ``allows`` says which keys its scope holds."""

    def __init__(self, settings: Settings, allows: Callable[[str], bool], client: Callable[[], OssClient]) -> None:
        self.settings = settings
        self.allows = allows
        self._client = client

    def needed(self, spec: UrlSpec) -> bool:
        settings = self.settings
        return spec.method != "PUT" and (settings.urls.symlink_check or settings.sign.check_exists)

    def check(self, key: str, spec: UrlSpec, client: OssClient | None = None) -> None:
        """Raise 403 SymlinkOutOfScope for a link leaving the scope, 404 for a missing key with SIGN_CHECK_EXISTS."""
        from shared.storage import OssError, to_app_error  # only when checking: urllib3 stays out of cold starts

        client = client or self._client()
        version_id = spec.options.version_id
        if self.settings.urls.symlink_check:
            found = symlinks.inspect(client, key, self.allows, version_id=version_id).exists
        else:
            try:
                client.head_object(key, version_id=version_id)
            except OssError as error:
                raise to_app_error(error) from None
            found = True
        if not found and self.settings.sign.check_exists:
            raise NotFound("the object does not exist")

    def check_many(self, checks: Iterable[Check]) -> dict[int, AppError]:
        """The refusals among ``checks``, by batch position."""
        checks = list(checks)
        client = self._client()
        started = time.perf_counter()
        settled: dict[str, symlinks.Inspection | AppError] = {}
        if self.settings.urls.symlink_check:  # one listing per directory where it settles many keys at once
            plain = [key for _index, key, spec in checks if not spec.options.version_id]
            settled = symlinks.inspect_many(client, plain, self.allows, workers=HEAD_WORKERS)
        refused: dict[int, AppError] = {}
        unsettled = []
        for index, key, spec in checks:
            outcome = None if spec.options.version_id else settled.get(key)
            if outcome is None:
                unsettled.append((index, key, spec))
            elif isinstance(outcome, AppError):
                refused[index] = outcome
            elif not outcome.exists and self.settings.sign.check_exists:
                refused[index] = NotFound("the object does not exist")
        if unsettled:
            refused.update(self._head_each(unsettled, client))
        log.get_logger().debug("sign.keys_inspected", count=len(checks), listed=len(settled),
                               duration_ms=round((time.perf_counter() - started) * 1000, 1))
        return refused

    def _head_each(self, checks: list[Check], client: OssClient) -> dict[int, AppError]:
        from concurrent.futures import ThreadPoolExecutor

        def one(entry: Check) -> tuple[int, AppError | None]:
            index, key, spec = entry
            try:
                self.check(key, spec, client)
            except AppError as error:
                return index, error
            return index, None

        with ThreadPoolExecutor(max_workers=min(HEAD_WORKERS, len(checks))) as pool:
            return {index: error for index, error in pool.map(one, checks) if error is not None}
