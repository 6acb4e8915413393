"""A running local STS (127.0.0.1, ephemeral port) and adapters for both official SDKs."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from alibabacloud_sts20150401 import models as sts_models
from alibabacloud_sts20150401.client import Client as TeaStsClient
from alibabacloud_tea_openapi.utils_models import Config
from aliyunsdkcore.acs_exception.exceptions import ServerException
from aliyunsdkcore.auth.credentials import StsTokenCredential
from aliyunsdkcore.client import AcsClient
from aliyunsdkcore.request import CommonRequest
from Tea.exceptions import TeaException

from local.sts import Role, StsService, TokenStore, make_sts_server

ACCOUNT = "1234567890123456"
ROOT_AK = "LTAI5tLocalRootKey0001"
ROOT_SECRET = "local-root-secret-0001"
ROOT = f"acs:ram::{ACCOUNT}:root"


def role_arn(name: str) -> str:
    return f"acs:ram::{ACCOUNT}:role/{name}"


def allow(action: str, resource: str = "*") -> dict[str, Any]:
    return {"Version": "1", "Statement": [{"Effect": "Allow", "Action": action, "Resource": resource}]}


ROLES = [
    Role(role_arn("reader"), [allow("oss:GetObject", "acs:oss:*:*:bucket/*")], [ROOT]),
    Role(role_arn("long"), [allow("oss:*")], [ROOT], max_session_duration=7200),
    # Role chaining: "chain-a" may assume "chain-b" (and "untrusting"), "chain-b" trusts only "chain-a".
    Role(
        role_arn("chain-a"),
        [allow("sts:AssumeRole", role_arn("chain-b")), allow("sts:AssumeRole", role_arn("untrusting"))],
        [ROOT],
    ),
    Role(role_arn("chain-b"), [allow("oss:*")], [role_arn("chain-a")]),
    Role(role_arn("untrusting"), [allow("oss:*")], [role_arn("somebody-else")]),
]


@dataclass
class Credentials:
    access_key_id: str
    access_key_secret: str
    security_token: str | None = None


ROOT_CREDS = Credentials(ROOT_AK, ROOT_SECRET)


class StsCallError(Exception):
    """An error response as an SDK reported it."""

    def __init__(self, status: int, code: str, message: str, exception: Exception):
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.exception = exception


class TeaClient:
    """alibabacloud-sts20150401 (ACS3-HMAC-SHA256)."""

    name = "acs3"

    def __init__(self, endpoint: str, creds: Credentials):
        config = Config(
            access_key_id=creds.access_key_id,
            access_key_secret=creds.access_key_secret,
            security_token=creds.security_token,
            endpoint=endpoint,
            protocol="http",
        )
        self._client = TeaStsClient(config)

    def assume_role(self, **params: Any) -> dict[str, Any]:
        request = sts_models.AssumeRoleRequest(
            role_arn=params.get("RoleArn"),
            role_session_name=params.get("RoleSessionName"),
            duration_seconds=params.get("DurationSeconds"),
            policy=params.get("Policy"),
            external_id=params.get("ExternalId"),
            source_identity=params.get("SourceIdentity"),
        )
        try:
            return self._client.assume_role(request).body.to_map()
        except TeaException as exc:
            raise StsCallError(exc.status_code or 0, exc.code or "", exc.message or "", exc) from exc

    def caller_identity(self) -> dict[str, Any]:
        try:
            return self._client.get_caller_identity().body.to_map()
        except TeaException as exc:
            raise StsCallError(exc.status_code or 0, exc.code or "", exc.message or "", exc) from exc


class RpcClient:
    """aliyun-python-sdk-core AcsClient + CommonRequest (RPC HMAC-SHA1)."""

    name = "rpc"

    def __init__(self, endpoint: str, creds: Credentials, *, method: str = "POST", in_body: bool = False):
        self.endpoint = endpoint
        self.method = method
        self.in_body = in_body
        if creds.security_token:
            credential = StsTokenCredential(creds.access_key_id, creds.access_key_secret, creds.security_token)
            self._client = AcsClient(region_id="cn-hangzhou", credential=credential)
        else:
            self._client = AcsClient(creds.access_key_id, creds.access_key_secret, "cn-hangzhou")

    def call(self, action: str, params: dict[str, Any]) -> dict[str, Any]:
        request = CommonRequest(domain=self.endpoint, version="2015-04-01", action_name=action)
        request.set_protocol_type("http")
        request.set_method(self.method)
        for name, value in params.items():
            if value is None:
                continue
            if self.in_body:
                request.add_body_params(name, str(value))
            else:
                request.add_query_param(name, str(value))
        try:
            return json.loads(self._client.do_action_with_exception(request))
        except ServerException as exc:
            raise StsCallError(exc.get_http_status(), exc.get_error_code(), exc.get_error_msg(), exc) from exc

    def assume_role(self, **params: Any) -> dict[str, Any]:
        return self.call("AssumeRole", params)

    def caller_identity(self) -> dict[str, Any]:
        return self.call("GetCallerIdentity", {})


def credentials_of(body: dict[str, Any]) -> Credentials:
    c = body["Credentials"]
    return Credentials(c["AccessKeyId"], c["AccessKeySecret"], c["SecurityToken"])


@dataclass
class LocalSts:
    service: StsService
    store: TokenStore
    endpoint: str
    db_path: Path

    def client(self, kind: str, creds: Credentials = ROOT_CREDS) -> TeaClient | RpcClient:
        return TeaClient(self.endpoint, creds) if kind == "acs3" else RpcClient(self.endpoint, creds)


def start_sts(tmp_path: Path, clock: Any = None) -> tuple[LocalSts, Any]:
    db_path = tmp_path / "sts.db"
    store = TokenStore(db_path)
    kwargs = {"clock": clock} if clock else {}
    service = StsService(root_keys={ROOT_AK: ROOT_SECRET}, roles=ROLES, store=store, account_id=ACCOUNT, **kwargs)
    server = make_sts_server("127.0.0.1", 0, service)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    return LocalSts(service, store, f"{host}:{port}", db_path), server


@pytest.fixture(scope="module")
def sts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSts]:
    local, server = start_sts(tmp_path_factory.mktemp("sts"))
    yield local
    server.shutdown()
    server.server_close()
    local.store.close()


@pytest.fixture(params=["acs3", "rpc"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class ShiftedClock:
    """utcnow plus an adjustable offset (the server's view of time)."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(timezone.utc) + self.offset
