"""ali-oss 6.23.0 (Node) against the emulator, through CNAME addressing; V1 and V4, root and STS.

The suite covers objects, listing, multipart, copy, delete, presigned URLs, PostObject, symlinks,
AppendObject with CRC-64, the NoSuchKey EC and ListMultipartUploads paging.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import crcmod
import pytest

from local.cloud import LocalCloud
from tests.local.support import BUCKET, ROOT_AK, ROOT_SECRET, Clock, Env, make_config

NODE_DIR = Path(__file__).parent / "node"
SUITE = NODE_DIR / "ali_oss_suite.js"

pytestmark = [
    pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed"),
    pytest.mark.skipif(not (NODE_DIR / "node_modules" / "ali-oss").is_dir(),
                       reason="tests/local/node/node_modules is absent: run `npm ci` in tests/local/node"),
]


@pytest.fixture(scope="module")
def cname_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    # ali-oss with `cname: true` sends Host: 127.0.0.1:PORT (or localhost:PORT) and /key paths.
    data = tmp_path_factory.mktemp("ali") / "data"
    clock = Clock()
    config = make_config(data, clock, cnames={"127.0.0.1": BUCKET, "localhost": BUCKET})
    with LocalCloud(config) as cloud:
        yield Env(cloud, clock, data)


@pytest.mark.parametrize("mode", ["root-v1", "root-v4", "sts-v1", "sts-v4"])
def test_ali_oss_suite(cname_env: Env, mode: str, tmp_path: Path) -> None:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "OSS_PORT": str(cname_env.port),
        "OSS_BUCKET": BUCKET,
        "OSS_V4": "1" if mode.endswith("v4") else "0",
        "OSS_PREFIX": f"ali/{mode}/",
        "OSS_TMP": str(tmp_path),
        # CRC-64/ECMA of b"hello world" from crcmod's generic engine, for the append check
        "CRC_HELLO_WORLD": str(crcmod.mkCrcFun(0x142F0E1EBA9EA3693, initCrc=0, xorOut=0xFFFFFFFFFFFFFFFF,
                                               rev=True)(b"hello world")),
    }
    if mode.startswith("root"):
        env.update(OSS_AK=ROOT_AK, OSS_SECRET=ROOT_SECRET)
    else:
        session = cname_env.session()
        env.update(OSS_AK=session.access_key_id, OSS_SECRET=session.access_key_secret,
                   OSS_TOKEN=session.security_token)
    completed = subprocess.run(["node", str(SUITE)], cwd=NODE_DIR, env=env, capture_output=True, text=True,
                               timeout=120, check=False)
    assert completed.returncode == 0, completed.stderr[-3000:] + completed.stdout[-1000:]
    assert '"ok":true' in completed.stdout
