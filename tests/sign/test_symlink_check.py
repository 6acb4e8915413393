"""shared/symlinks.py against the emulator: links in and out of the scope, dangling links, chains; a batch
settled by one listing per directory (HEADs only for links), the HEAD fallback when listing is refused; and
the sign handler's answers (403 SymlinkOutOfScope, 404 only with SIGN_CHECK_EXISTS)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from functions.sign.handler import handler
from local.cloud import LocalCloud
from shared.errors import AppError
from shared.signing import Credentials, Endpoint
from shared.storage import OssClient, OssError
from shared.symlinks import Inspection, SymlinkOutOfScope, inspect, inspect_many
from tests.sign.helpers import BUCKET, REGION, ROOT_AK, ROOT_SECRET, body_of, context, event, install_env, local_cloud
from tests.sign.helpers import oss2_bucket as make_oss2_bucket

SCOPE = "exampledir/"
LINKS = {"ln-ok": f"{SCOPE}a.txt", "ln-out": "otherdir/x.txt", "ln-prefix": "exampledirx/x.txt",
         "ln-dangling": "otherdir/later.txt", "ln-chain": f"{SCOPE}ln-out", "ln-chain-ok": f"{SCOPE}ln-ok",
         "sub/ln-up": f"{SCOPE}a.txt"}
REFUSED = {"ln-out", "ln-prefix", "ln-dangling", "ln-chain"}


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    with local_cloud(tmp_path_factory.mktemp("symlinks")) as cloud:
        bucket = make_oss2_bucket(cloud)
        for key in (f"{SCOPE}a.txt", f"{SCOPE}b.txt", f"{SCOPE}c.txt", "otherdir/x.txt", "exampledirx/x.txt"):
            bucket.put_object(key, b"bytes of " + key.encode())
        for name, target in LINKS.items():
            bucket.put_symlink(target, SCOPE + name)
        yield cloud


class CountingClient(OssClient):
    def __init__(self, cloud: LocalCloud, *, list_refused: bool = False) -> None:
        super().__init__(credentials=lambda: Credentials(ROOT_AK, ROOT_SECRET), bucket=BUCKET, region=REGION,
                         endpoint=Endpoint(cloud.oss_endpoint, "http", "path"), max_retries=0)
        self.calls: Counter[str] = Counter()
        self.list_refused = list_refused

    def head_object(self, key: str, **kw: Any) -> Any:
        self.calls["head"] += 1
        return super().head_object(key, **kw)

    def get_symlink(self, key: str, **kw: Any) -> str:
        self.calls["get_symlink"] += 1
        return super().get_symlink(key, **kw)

    def list_objects_v2(self, prefix: str = "", **kw: Any) -> Any:
        self.calls["list"] += 1
        if self.list_refused:
            raise OssError(403, "AccessDenied", "listing refused")
        return super().list_objects_v2(prefix, **kw)


def allows(key: str) -> bool:
    return key.startswith(SCOPE)


@pytest.mark.parametrize("name", sorted(LINKS))
def test_inspect_each_link(cloud: LocalCloud, name: str) -> None:
    client = CountingClient(cloud)
    if name in REFUSED:
        with pytest.raises(SymlinkOutOfScope):
            inspect(client, SCOPE + name, allows)
    else:
        found = inspect(client, SCOPE + name, allows)
        assert found.exists and found.targets[-1] == f"{SCOPE}a.txt"


def test_regular_and_missing_objects_cost_one_head_and_one_head_plus_getsymlink(cloud: LocalCloud) -> None:
    client = CountingClient(cloud)
    assert inspect(client, f"{SCOPE}a.txt", allows) == Inspection(f"{SCOPE}a.txt", True)
    assert client.calls == {"head": 1}
    assert inspect(client, f"{SCOPE}missing.txt", allows) == Inspection(f"{SCOPE}missing.txt", False)
    assert client.calls == {"head": 2, "get_symlink": 1}


@pytest.mark.parametrize("list_refused", [False, True])
def test_a_batch_is_settled_by_one_listing_per_directory(cloud: LocalCloud, list_refused: bool) -> None:
    client = CountingClient(cloud, list_refused=list_refused)
    plain = [f"{SCOPE}a.txt", f"{SCOPE}b.txt", f"{SCOPE}c.txt", f"{SCOPE}missing.txt"]
    keys = plain + [SCOPE + name for name in LINKS]
    outcomes = inspect_many(client, keys, allows)
    for name in LINKS:
        outcome = outcomes[SCOPE + name]
        if name in REFUSED:
            assert isinstance(outcome, SymlinkOutOfScope), name
        else:
            assert isinstance(outcome, Inspection) and outcome.exists, name
    assert [outcomes[key] for key in plain] == [Inspection(key, key != f"{SCOPE}missing.txt") for key in plain]
    if list_refused:  # every key HEADed instead
        assert client.calls["list"] == 1 and client.calls["head"] >= len(keys)
    else:  # one listing for exampledir/; HEAD and GetSymlink only for the links (sub/ has one key: HEADed)
        # heads: ln-ok 2, ln-out 1, ln-prefix 1, ln-dangling 1, ln-chain 2, ln-chain-ok 3, sub/ln-up 2
        assert client.calls == {"list": 1, "head": 12, "get_symlink": 9}


@pytest.fixture
def signing(cloud: LocalCloud, monkeypatch: pytest.MonkeyPatch) -> Any:
    def configure(**env: str) -> None:
        install_env(monkeypatch, URL_SYMLINK_CHECK="true", OSS_ENDPOINT=f"http://{cloud.oss_endpoint}", **env)

    return configure


def test_sign_refuses_links_out_of_the_scope_and_signs_the_rest(signing: Any) -> None:
    signing()
    refused = handler(event("GET", "/sign", query={"key": f"{SCOPE}ln-out"}), context())
    assert refused["statusCode"] == 403 and body_of(refused)["code"] == "SymlinkOutOfScope"
    keys = [f"{SCOPE}a.txt", f"{SCOPE}b.txt", f"{SCOPE}c.txt", f"{SCOPE}ln-ok", f"{SCOPE}ln-chain",
            f"{SCOPE}missing.txt", {"key": f"{SCOPE}ln-out", "method": "HEAD"}, {"key": f"{SCOPE}ln-out",
                                                                                   "method": "PUT"}]
    batch = handler(event("POST", "/sign", body={"keys": keys}), context())
    results = body_of(batch)["results"]
    codes = [result.get("error", {}).get("code") for result in results]
    # PUT is off here: 403 Forbidden for it; a PUT replaces whatever is there, links included, so it is not HEADed
    assert codes == [None, None, None, None, "SymlinkOutOfScope", None, "SymlinkOutOfScope", "Forbidden"]


def test_with_check_exists_a_missing_key_is_a_404_and_puts_are_not_looked_at(signing: Any) -> None:
    signing(SIGN_CHECK_EXISTS="true", SIGN_ALLOW_PUT="true")
    batch = handler(event("POST", "/sign", body={"keys": [
        f"{SCOPE}a.txt", f"{SCOPE}b.txt", f"{SCOPE}c.txt", f"{SCOPE}missing.txt", f"{SCOPE}ln-dangling",
        {"key": f"{SCOPE}ln-out", "method": "PUT"}]}), context())
    codes = [result.get("error", {}).get("code") for result in body_of(batch)["results"]]
    assert codes == [None, None, None, "NotFound", "SymlinkOutOfScope", None]
    single = handler(event("GET", "/sign", query={"key": f"{SCOPE}missing.txt"}), context())
    assert single["statusCode"] == 404


def test_errors_are_app_errors() -> None:
    assert issubclass(SymlinkOutOfScope, AppError) and SymlinkOutOfScope.status == 403


