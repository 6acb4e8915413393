"""Never sign or serve a symlink whose target is outside the caller's scope.

PutSymlink needs only ``oss:PutObject`` on the link, and GetObject on a link returns the target's bytes
(OSS checks the ACLs of both, but does not document that a session policy is evaluated against the target),
so a caller allowed to write ``users/alice/ln`` could point it at ``users/bob/secret.txt``. Finding out
costs one HEAD per key (``x-oss-object-type: Symlink`` tells a link), plus one GetSymlink only for links and
for keys the HEAD did not find (a dangling link answers 404 to HEAD but still has a target). A chain of links
is followed, every target checked, up to ``MAX_HOPS``. For a batch, ``inspect_many`` first lists each
directory holding at least ``LIST_THRESHOLD`` of the keys (ListObjectsV2 gives every object's ``Type``, up to
1000 a page): one request settles them all, and only links and what the listing could not settle (listing
refused, more than ``LIST_MAX_PAGES`` pages) are HEADed.

Residual: the check holds when the URL is signed; a caller who can write can later replace a checked
object by a link. Narrowed signing sessions (shared/scoped_signing.py) are the second line there.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.errors import AppError, Forbidden

if TYPE_CHECKING:
    from shared.storage import OssClient, OssError

MAX_HOPS = 4
LIST_THRESHOLD = 4  # keys of one directory from which one listing is cheaper than their HEADs
LIST_MAX_PAGES = 2


class SymlinkOutOfScope(Forbidden):
    code = "SymlinkOutOfScope"


@dataclass(frozen=True)
class Inspection:
    """What a key is: ``exists`` (the HEAD found it, through links) and the links followed, in order."""

    key: str
    exists: bool
    targets: tuple[str, ...] = ()


def inspect(client: OssClient, key: str, allows: Callable[[str], bool], *,
            version_id: str | None = None) -> Inspection:
    """HEAD ``key`` (and GetSymlink where needed); raise SymlinkOutOfScope if any link target is outside
    ``allows``, the storage errors as AppErrors (403, 502); a missing key is ``exists=False``."""
    from shared.storage import to_app_error

    targets: list[str] = []
    current, current_version = key, version_id
    for _hop in range(MAX_HOPS + 1):
        head = _head(client, current, current_version)
        if head is None:
            return Inspection(key, True, tuple(targets))
        exists, refused = head
        target = _symlink_target(client, current, current_version)
        if target is None:  # not a link: the HEAD's answer stands
            if refused is not None:
                raise to_app_error(refused) from None
            return Inspection(key, exists and not targets, tuple(targets))
        if not target or not allows(target):
            raise SymlinkOutOfScope("the key is a symlink to an object outside the caller's scope")
        if refused is not None:
            raise to_app_error(refused) from None
        targets.append(target)
        current, current_version = target, None
    raise SymlinkOutOfScope(f"the key is a chain of more than {MAX_HOPS} symlinks")


def _head(client: OssClient, key: str, version_id: str | None) -> tuple[bool, OssError | None] | None:
    """None when HEAD finds an object that is not a link; else (exists, the 403 to raise unless it is a link)."""
    from shared.storage import OssError, to_app_error

    try:
        info = client.head_object(key, version_id=version_id)
    except OssError as error:
        # Through a link HEAD answers for the target: 404 when it is missing, 403 when it is not readable
        # with these credentials, 400 InvalidTargetType when it is a link. GetSymlink tells which.
        if error.status not in (403, 404) and error.code != "InvalidTargetType":
            raise to_app_error(error) from None
        return error.status != 404, error if error.status == 403 else None
    if info.headers.get("x-oss-object-type", "").lower() != "symlink":
        return None
    return True, None


def _symlink_target(client: OssClient, key: str, version_id: str | None) -> str | None:
    """The target of the link ``key``, or None: ``key`` is not a link."""
    from shared.storage import OssError, to_app_error

    try:
        return client.get_symlink(key, version_id=version_id)
    except OssError as error:
        if error.status == 404 or error.code == "NotSymlink":
            return None
        raise to_app_error(error) from None
    except UnicodeDecodeError:
        raise SymlinkOutOfScope("the key is a symlink whose target cannot be read") from None


def inspect_many(client: OssClient, keys: Sequence[str], allows: Callable[[str], bool], *,
                 workers: int = 8) -> dict[str, Inspection | AppError]:
    """``inspect`` for many keys: listings where they settle a directory's keys at once, HEADs for the rest."""
    outcomes: dict[str, Inspection | AppError] = {}
    remaining: list[str] = []
    types = listed_types(client, keys)
    for key in dict.fromkeys(keys):
        kind = types.get(key, "?")
        if kind is None:
            outcomes[key] = Inspection(key, False)  # not in the listing: no object, so no link either
        elif kind != "?" and kind.lower() != "symlink":
            outcomes[key] = Inspection(key, True)
        else:
            remaining.append(key)

    def one(key: str) -> tuple[str, Inspection | AppError]:
        try:
            return key, inspect(client, key, allows)
        except AppError as error:
            return key, error

    if remaining:
        with ThreadPoolExecutor(max_workers=min(workers, len(remaining))) as pool:
            outcomes.update(pool.map(one, remaining))
    return outcomes


def listed_types(client: OssClient, keys: Sequence[str]) -> dict[str, str | None]:
    """key -> its listed ``Type`` (None: not there) for the keys one listing per directory settles."""
    from shared.storage import OssError

    by_directory: dict[str, list[str]] = defaultdict(list)
    for key in set(keys):
        by_directory[key[:key.rfind("/") + 1]].append(key)
    settled: dict[str, str | None] = {}
    for directory, members in by_directory.items():
        if len(members) < LIST_THRESHOLD:
            continue
        members.sort()
        try:
            seen, listed_to, complete = _scan_directory(client, directory, members)
        except OssError:
            continue  # e.g. listing not allowed to these credentials: HEAD them instead
        for key in members:
            if key in seen:
                settled[key] = seen[key]
            elif complete or key <= listed_to:
                settled[key] = None
    return settled


def _scan_directory(client: OssClient, directory: str, members: list[str]) -> tuple[dict[str, str], str, bool]:
    """List ``directory`` from its first sorted member for up to LIST_MAX_PAGES pages: the Type of each member
    seen, the last key (or common prefix) listed, and whether the listing reached past the last member."""
    wanted, last = set(members), members[-1]
    seen: dict[str, str] = {}
    token: str | None = None
    listed_to = ""
    for _page in range(LIST_MAX_PAGES):
        # start-after is exclusive: the first key's own prefix sorts just before it.
        page = client.list_objects_v2(directory, continuation_token=token, delimiter="/",
                                      start_after=None if token else members[0][:-1] or None)
        for info in page.objects:
            if info.key in wanted:
                seen[info.key] = info.object_type or "Normal"
            listed_to = max(listed_to, info.key)
        listed_to = max([listed_to, *page.common_prefixes])
        if not page.is_truncated or not page.next_continuation_token or listed_to >= last:
            return seen, listed_to, not page.is_truncated or listed_to >= last
        token = page.next_continuation_token
    return seen, listed_to, False
