"""OSS-trigger events: FC event JSON, filters, at-least-once delivery to callbacks and HTTP subscribers."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import oss2

from tests.local.support import ACCOUNT, BUCKET, REGION, ROOT_AK, ROOT_SECRET, Env


def root_bucket(env: Env, bucket: str = BUCKET) -> oss2.Bucket:
    return oss2.Bucket(oss2.AuthV4(ROOT_AK, ROOT_SECRET), env.endpoint, bucket, region=REGION)


def test_put_copy_and_multipart_events(env: Env) -> None:
    received: list[dict] = []
    env.cloud.subscribe(received.append, bucket=BUCKET, prefix="uploads/", suffix=".pdf")
    bucket = root_bucket(env)
    key = "uploads/报告 a+b.pdf"
    put = bucket.put_object(key, b"%PDF-1.7")
    bucket.put_object("uploads/ignored.txt", b"no")  # suffix filter
    bucket.put_object("elsewhere/x.pdf", b"no")  # prefix filter
    root_bucket(env, "other").put_object("uploads/y.pdf", b"no")  # other bucket
    bucket.copy_object(BUCKET, key, "uploads/copy.pdf")
    upload_id = bucket.init_multipart_upload("uploads/mp.pdf").upload_id
    part = bucket.upload_part("uploads/mp.pdf", upload_id, 1, b"abc")
    bucket.complete_multipart_upload("uploads/mp.pdf", upload_id, [oss2.models.PartInfo(1, part.etag)])
    bucket.put_object(key, b"%PDF-1.7 longer")  # overwrite: deltaSize is the growth
    assert env.cloud.wait_for_events()

    names = [(e["events"][0]["eventName"], e["events"][0]["oss"]["object"]["key"]) for e in received]
    assert names == [
        ("ObjectCreated:PutObject", key),
        ("ObjectCreated:CopyObject", "uploads/copy.pdf"),
        ("ObjectCreated:CompleteMultipartUpload", "uploads/mp.pdf"),
        ("ObjectCreated:PutObject", key),
    ]
    first = received[0]["events"][0]
    assert first["eventSource"] == "acs:oss"
    assert first["eventVersion"] == "1.0"
    assert first["region"] == REGION
    assert first["oss"]["bucket"] == {"arn": f"acs:oss:{REGION}:{ACCOUNT}:{BUCKET}", "name": BUCKET,
                                      "ownerIdentity": ACCOUNT}
    assert first["oss"]["object"] == {"deltaSize": 8, "eTag": put.etag, "key": key, "size": 8}
    assert first["oss"]["ossSchemaVersion"] == "1.0"
    assert first["requestParameters"] == {"sourceIPAddress": "127.0.0.1"}
    assert len(first["responseElements"]["requestId"]) == 24
    assert first["eventTime"].endswith(".000Z")
    assert received[2]["events"][0]["oss"]["object"]["eTag"].endswith("-1")
    assert received[3]["events"][0]["oss"]["object"]["deltaSize"] == 7


def test_event_name_filter(env: Env) -> None:
    only_multipart: list[dict] = []
    env.cloud.subscribe(only_multipart.append, bucket=BUCKET, events=["oss:ObjectCreated:CompleteMultipartUpload"])
    bucket = root_bucket(env)
    bucket.put_object("a", b"1")
    upload_id = bucket.init_multipart_upload("b").upload_id
    part = bucket.upload_part("b", upload_id, 1, b"2")
    bucket.complete_multipart_upload("b", upload_id, [oss2.models.PartInfo(1, part.etag)])
    assert env.cloud.wait_for_events()
    assert [e["events"][0]["oss"]["object"]["key"] for e in only_multipart] == ["b"]


def test_failing_callback_is_retried(env: Env) -> None:
    env.cloud.dispatcher.backoff = 0.01
    attempts: list[str] = []

    def flaky(event: dict) -> None:
        attempts.append(event["events"][0]["oss"]["object"]["key"])
        if len(attempts) < 3:
            raise RuntimeError("subscriber down")

    env.cloud.subscribe(flaky, bucket=BUCKET)
    root_bucket(env).put_object("retried", b"1")
    assert env.cloud.wait_for_events()
    assert attempts == ["retried"] * 3


def test_http_subscriber(env: Env) -> None:
    bodies: list[dict] = []
    failures = {"left": 1}

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if failures["left"]:
                failures["left"] -= 1
                self.send_response(503)
            else:
                bodies.append(payload)
                self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        env.cloud.dispatcher.backoff = 0.01
        env.cloud.subscribe_http(f"http://127.0.0.1:{server.server_address[1]}/event", bucket=BUCKET, prefix="in/")
        root_bucket(env).put_object("in/file.csv", b"a,b")
        assert env.cloud.wait_for_events()
    finally:
        server.shutdown()
        server.server_close()
    assert [b["events"][0]["oss"]["object"]["key"] for b in bodies] == ["in/file.csv"]
