"""The token handler against the local STS + OSS emulators, and oss2 using what it hands out.

The emulators judge independently (their own ACS3 verification and RAM policy evaluation): credentials
vended for ``users/alice/`` read and list there, and are refused everywhere else and for writes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import oss2
import pytest

from functions.token.handler import handler
from local.cloud import CloudConfig, LocalCloud
from local.sts import Role
from tests.token.conftest import AUDIENCE, BUCKET, HS_SECRET, ISSUER, body_of, make_event, make_jwt

ACCOUNT = "1234567890123456"
ROOT_AK = "LTAI5tLocalRootKeyForTokenTests"
ROOT_SECRET = "local-root-secret-for-token-tests-01"
VENDED_ROLE = f"acs:ram::{ACCOUNT}:role/vended"
FUNCTION_ROLE = f"acs:ram::{ACCOUNT}:role/function"


def _allow(actions: list[str], resources: list[str]) -> dict:
    return {"Version": "1", "Statement": [{"Effect": "Allow", "Action": actions, "Resource": resources}]}


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    roles = [
        Role(VENDED_ROLE, [_allow(["oss:*"], [f"acs:oss:*:*:{BUCKET}", f"acs:oss:*:*:{BUCKET}/*"])],
             [f"acs:ram::{ACCOUNT}:root", FUNCTION_ROLE]),
        Role(FUNCTION_ROLE, [_allow(["sts:AssumeRole"], [VENDED_ROLE])], [f"acs:ram::{ACCOUNT}:root"]),
    ]
    config = CloudConfig(data_dir=Path(tmp_path_factory.mktemp("cloud")), account_id=ACCOUNT,
                         root_keys={ROOT_AK: ROOT_SECRET}, buckets=[BUCKET], roles=roles)
    with LocalCloud(config) as running:
        owner = oss2.Bucket(oss2.Auth(ROOT_AK, ROOT_SECRET), f"http://{running.oss_endpoint}", BUCKET)
        for key in ("users/alice/a.txt", "users/alice/deep/b.txt", "users/alice2/c.txt", "users/bob/d.txt"):
            owner.put_object(key, f"content of {key}".encode())
        yield running


def _function_context(cloud: LocalCloud, chained: bool) -> SimpleNamespace:
    if not chained:
        creds = SimpleNamespace(access_key_id=ROOT_AK, access_key_secret=ROOT_SECRET, security_token=None)
    else:  # the function runs as its own role (STS credentials), as on Function Compute
        from alibabacloud_sts20150401 import models
        from alibabacloud_sts20150401.client import Client
        from alibabacloud_tea_openapi.utils_models import Config

        client = Client(Config(access_key_id=ROOT_AK, access_key_secret=ROOT_SECRET, endpoint=cloud.sts_endpoint,
                               protocol="http", region_id="cn-hangzhou"))
        issued = client.assume_role(models.AssumeRoleRequest(role_arn=FUNCTION_ROLE, role_session_name="fc",
                                                             duration_seconds=3600)).body.credentials
        creds = SimpleNamespace(access_key_id=issued.access_key_id, access_key_secret=issued.access_key_secret,
                                security_token=issued.security_token)
    return SimpleNamespace(request_id="req-int", credentials=creds)


@pytest.mark.parametrize("chained", [False, True], ids=["ram-user-caller", "function-role-chaining"])
def test_vended_credentials_work_inside_the_scope_only(env, cloud, chained):
    env(AUTH_MODE="jwt", JWT_ISSUER=ISSUER, JWT_AUDIENCE=AUDIENCE, JWT_ALGORITHMS="HS256",
        JWT_HS256_SECRET=HS_SECRET, STS_ROLE_ARN=VENDED_ROLE, STS_ENDPOINT=f"http://{cloud.sts_endpoint}",
        OSS_ENDPOINT=f"http://{cloud.oss_endpoint}", ALIBABA_CLOUD_ACCESS_KEY_ID=None,
        ALIBABA_CLOUD_ACCESS_KEY_SECRET=None, ALIBABA_CLOUD_SECURITY_TOKEN=None)
    token = make_jwt(HS_SECRET, "HS256", sub="alice")
    response = handler(make_event(headers={"Authorization": f"Bearer {token}"}, body={"duration": 900}),
                       _function_context(cloud, chained))
    assert response["statusCode"] == 200, response["body"]
    issued = body_of(response)
    assert issued["AccessKeyId"].startswith("STS.") and issued["Prefix"] == "users/alice/"
    assert issued["Endpoint"] == f"http://{cloud.oss_endpoint}"

    auth = oss2.StsAuth(issued["AccessKeyId"], issued["AccessKeySecret"], issued["SecurityToken"])
    bucket = oss2.Bucket(auth, issued["Endpoint"], issued["Bucket"])
    assert bucket.get_object("users/alice/a.txt").read() == b"content of users/alice/a.txt"
    assert bucket.get_object("users/alice/deep/b.txt").read() == b"content of users/alice/deep/b.txt"
    listed = [o.key for o in bucket.list_objects_v2(prefix="users/alice/").object_list]
    assert listed == ["users/alice/a.txt", "users/alice/deep/b.txt"]
    for key in ("users/alice2/c.txt", "users/bob/d.txt"):
        with pytest.raises(oss2.exceptions.AccessDenied):
            bucket.get_object(key)
    for prefix in ("users/", "", "users/alice2/"):
        with pytest.raises(oss2.exceptions.AccessDenied):
            bucket.list_objects_v2(prefix=prefix)
    with pytest.raises(oss2.exceptions.AccessDenied):
        bucket.put_object("users/alice/new.txt", b"no write granted")


def test_narrowed_read_only_credentials(env, cloud):
    env(AUTH_MODE="none", AUTH_ANONYMOUS_SCOPE="users/", STS_ROLE_ARN=VENDED_ROLE,
        STS_ENDPOINT=f"http://{cloud.sts_endpoint}", OSS_ENDPOINT=f"http://{cloud.oss_endpoint}")
    response = handler(make_event(method="GET", query={"prefix": "alice/deep", "actions": "read"}),
                       _function_context(cloud, False))
    issued = body_of(response)
    assert issued["Prefix"] == "users/alice/deep/" and issued["Actions"] == ["read"]
    bucket = oss2.Bucket(oss2.StsAuth(issued["AccessKeyId"], issued["AccessKeySecret"], issued["SecurityToken"]),
                         issued["Endpoint"], BUCKET)
    assert bucket.get_object("users/alice/deep/b.txt").read()
    with pytest.raises(oss2.exceptions.AccessDenied):
        bucket.get_object("users/alice/a.txt")
    with pytest.raises(oss2.exceptions.AccessDenied):
        bucket.list_objects_v2(prefix="users/alice/deep/")


def test_missing_role_is_502_from_the_real_emulator(env, cloud):
    env(AUTH_MODE="none", AUTH_ANONYMOUS_SCOPE="users/", STS_ROLE_ARN=f"acs:ram::{ACCOUNT}:role/missing",
        STS_ENDPOINT=f"http://{cloud.sts_endpoint}")
    response = handler(make_event(), _function_context(cloud, False))
    assert response["statusCode"] == 502 and "missing" not in response["body"]
    assert json.loads(response["body"])["code"] == "UpstreamError"


def test_bad_caller_key_is_502(env, cloud):
    env(AUTH_MODE="none", AUTH_ANONYMOUS_SCOPE="users/", STS_ROLE_ARN=VENDED_ROLE,
        STS_ENDPOINT=f"http://{cloud.sts_endpoint}")
    context = SimpleNamespace(request_id="r", credentials=SimpleNamespace(
        access_key_id=ROOT_AK, access_key_secret="wrong-secret-0123456789", security_token=None))
    response = handler(make_event(), context)
    assert response["statusCode"] == 502
