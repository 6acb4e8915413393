"""`python -m local serve`: flags reach the emulator (keys, buckets, roles, CORS, CNAME, public-read)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import oss2

from tests.local.helpers import send

ROOT = Path(__file__).resolve().parents[2]


def test_serve_command(tmp_path: Path) -> None:
    roles = [{"arn": "acs:ram::1234567890123456:role/cli", "trust": ["acs:ram::1234567890123456:root"],
              "policies": [{"Version": "1", "Statement": [{"Effect": "Allow", "Action": ["oss:*"],
                                                           "Resource": ["acs:oss:*:*:*"]}]}]}]
    (tmp_path / "roles.json").write_text(json.dumps(roles))
    cors = {"web": [{"AllowedOrigin": "*", "AllowedMethod": ["GET"], "AllowedHeader": "*"}]}
    (tmp_path / "cors.json").write_text(json.dumps(cors))
    command = [sys.executable, "-m", "local", "serve", "--oss-port", "0", "--sts-port", "0",
               "--data", str(tmp_path / "data"), "--root-key", "LTAIcli:cli-secret", "--bucket", "web",
               "--roles", str(tmp_path / "roles.json"), "--cors", str(tmp_path / "cors.json"),
               "--cname", "cdn.example.test=web", "--public-read", "open"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        first_line = process.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)", first_line)
        assert match, first_line + process.stderr.read()
        endpoint = f"http://127.0.0.1:{match.group(1)}"
        bucket = oss2.Bucket(oss2.AuthV4("LTAIcli", "cli-secret"), endpoint, "web", region="cn-hangzhou")
        bucket.put_object("index.html", b"<h1>hi</h1>")
        preflight = send("OPTIONS", f"{endpoint}/web/index.html",
                         headers={"Origin": "https://any.example", "Access-Control-Request-Method": "GET"})
        assert preflight.status == 200
        via_cname = send("GET", f"http://cdn.example.test:{match.group(1)}/index.html",
                         connect_to=("127.0.0.1", int(match.group(1))))
        assert via_cname.code == "AccessDenied"  # addressed by CNAME; private bucket
        opened = oss2.Bucket(oss2.AuthV4("LTAIcli", "cli-secret"), endpoint, "open", region="cn-hangzhou")
        opened.put_object("free.txt", b"free")
        assert send("GET", f"{endpoint}/open/free.txt").body == b"free"
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)
        process.stdout.close()
        process.stderr.close()
    assert process.returncode == 0
