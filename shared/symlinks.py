"""Never sign or serve a symlink whose target is outside the caller's scope.

PutSymlink needs only ``oss:PutObject`` on the link, and GetObject on a link returns the target's bytes
(OSS checks the ACLs of both, but does not document that a session policy is evaluated against the target),
so a caller allowed to write ``users/alice/ln`` could point it at ``users/bob/secret.txt``. Finding out
costs one HEAD per key (``x-oss-object-type: Symlink`` tells a link), plus one GetSymlink only for links and
for keys the HEAD did not find (a dangling link answers 404 to HEAD but still has a target). A chain of links
is followed, every target checked, up to ``MAX_HOPS``.

Residual: the check holds when the URL is signed; a caller who can write can later replace a checked
object by a link. Narrowed signing sessions (shared/scoped_signing.py) are the second line there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.errors import Forbidden

if TYPE_CHECKING:
    from shared.storage import OssClient

MAX_HOPS = 4


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
    from shared.storage import OssError, to_app_error

    targets: list[str] = []
    current, current_version = key, version_id
    for _hop in range(MAX_HOPS + 1):
        refused: OssError | None = None
        try:
            info = client.head_object(current, version_id=current_version)
        except OssError as error:
            # Through a link HEAD answers for the target: 404 when it is missing, 403 when it is not readable
            # with these credentials, 400 InvalidTargetType when it is a link. GetSymlink tells which.
            if error.status not in (403, 404) and error.code != "InvalidTargetType":
                raise to_app_error(error) from None
            exists, refused = error.status != 404, error if error.status == 403 else None
        else:
            if info.headers.get("x-oss-object-type", "").lower() != "symlink":
                return Inspection(key, True, tuple(targets))
            exists = True
        try:
            target = client.get_symlink(current, version_id=current_version)
        except OssError as error:
            if error.status == 404 or error.code == "NotSymlink":  # not a link: the HEAD's answer stands
                if refused is not None:
                    raise to_app_error(refused) from None
                return Inspection(key, exists and not targets, tuple(targets))
            raise to_app_error(error) from None
        except UnicodeDecodeError:
            raise SymlinkOutOfScope("the key is a symlink whose target cannot be read") from None
        if not target or not allows(target):
            raise SymlinkOutOfScope("the key is a symlink to an object outside the caller's scope")
        if refused is not None:
            raise to_app_error(refused) from None
        targets.append(target)
        current, current_version = target, None
    raise SymlinkOutOfScope(f"the key is a chain of more than {MAX_HOPS} symlinks")
