"""V1 signs the key raw: a key whose text after '?' names a sub-resource anywhere reads as that request.

``a.txt?aaa&acl&b`` holds ``acl`` in third position; checking only the first name after '?' signed it
(issue 10), and the signature then covered an object-ACL request.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from shared.keys import InvalidKey
from shared.signing import Credentials, Endpoint, Signer, is_v1_ambiguous_key

AMBIGUOUS = ["a.txt?acl", "a.txt?aaa&acl&b", "a.txt?aaa&b&uploadId=1", "a.txt?x=1&x-oss-process=image/info",
             "a.txt?zz?acl", "a.txt?aaa=acl&tagging", "dir/?b&versionId=1&c", "a?q&cloudboxes"]
PLAIN = ["a.txt", "what?.txt", "a.txt?aaa&bbb", "a.txt?aaa=acl", "a.txt?acl2&xacl", "a?b=uploadId"]


@pytest.mark.parametrize("key", AMBIGUOUS)
def test_any_sub_resource_name_after_the_question_mark_is_ambiguous(key: str) -> None:
    assert is_v1_ambiguous_key(key)


@pytest.mark.parametrize("key", PLAIN)
def test_keys_without_a_sub_resource_name_stay_signable(key: str) -> None:
    assert not is_v1_ambiguous_key(key)


def _signer(version: str) -> Signer:
    credentials = Credentials("LTAI5tExampleKey", "example-secret-0123456789")
    return Signer(credentials, Endpoint("oss-cn-hangzhou.aliyuncs.com", "https", "virtual"), "demo-bucket",
                  region="cn-hangzhou", version=version)  # type: ignore[arg-type]


def test_the_signer_refuses_them_with_v1_and_signs_them_with_v4() -> None:
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    with pytest.raises(InvalidKey):
        _signer("v1").presign("a.txt?aaa&acl&b", expires=600, now=now)
    assert "a.txt%3Faaa%26acl%26b" in _signer("v4").presign("a.txt?aaa&acl&b", expires=600, now=now).url
