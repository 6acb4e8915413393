"""alibabacloud-oss-v2 1.4.1 against the emulator (path style): V4 and V1, root keys and STS."""

from __future__ import annotations

import datetime
import hashlib
import os
import urllib.request

import alibabacloud_oss_v2 as oss
import pytest

from tests.local.support import BUCKET, Env, v2_client

MODES = ["root-v4", "root-v1", "sts-v4", "sts-v1"]


@pytest.mark.parametrize("mode", MODES)
def test_object_lifecycle(shared_env: Env, mode: str) -> None:
    client = v2_client(shared_env, mode)
    base = f"v2/{mode}/"
    key = base + "报告/a b+c~d*.txt"
    body = os.urandom(2048)

    put = client.put_object(oss.PutObjectRequest(bucket=BUCKET, key=key, body=body, content_type="text/csv",
                                                 metadata={"owner": "carol"}))
    assert put.status_code == 200
    assert put.etag == '"' + hashlib.md5(body).hexdigest().upper() + '"'

    assert client.get_object(oss.GetObjectRequest(bucket=BUCKET, key=key)).body.read() == body
    ranged = client.get_object(oss.GetObjectRequest(bucket=BUCKET, key=key, range_header="bytes=100-199"))
    assert ranged.status_code == 206
    assert ranged.body.read() == body[100:200]

    head = client.head_object(oss.HeadObjectRequest(bucket=BUCKET, key=key))
    assert head.content_length == 2048
    assert head.content_type == "text/csv"
    assert head.metadata == {"owner": "carol"}
    assert client.is_object_exist(BUCKET, key)
    assert not client.is_object_exist(BUCKET, base + "missing")

    client.copy_object(oss.CopyObjectRequest(bucket=BUCKET, key=base + "copy", source_bucket=BUCKET,
                                             source_key=key))
    assert client.get_object(oss.GetObjectRequest(bucket=BUCKET, key=base + "copy")).body.read() == body

    presigned = client.presign(oss.GetObjectRequest(bucket=BUCKET, key=key), expires=datetime.timedelta(minutes=5))
    with urllib.request.urlopen(presigned.url) as response:
        assert response.read() == body

    client.delete_object(oss.DeleteObjectRequest(bucket=BUCKET, key=base + "copy"))
    with pytest.raises(oss.exceptions.OperationError) as raised:
        client.get_object(oss.GetObjectRequest(bucket=BUCKET, key=base + "copy"))
    assert raised.value.unwrap().code == "NoSuchKey"
    result = client.delete_multiple_objects(oss.DeleteMultipleObjectsRequest(
        bucket=BUCKET, objects=[oss.DeleteObject(key=key), oss.DeleteObject(key=base + "gone")]))
    assert sorted(d.key for d in result.deleted_objects) == sorted([key, base + "gone"])
    assert not client.is_object_exist(BUCKET, key)


@pytest.mark.parametrize("mode", MODES)
def test_listing(shared_env: Env, mode: str) -> None:
    client = v2_client(shared_env, mode)
    base = f"list-v2/{mode}/"
    keys = [f"{base}d/{i}" for i in range(4)] + [f"{base}x y+z", f"{base}é.txt"]
    for key in keys:
        client.put_object(oss.PutObjectRequest(bucket=BUCKET, key=key, body=b"."))

    v1 = client.list_objects(oss.ListObjectsRequest(bucket=BUCKET, prefix=base, delimiter="/"))
    assert [o.key for o in v1.contents] == [f"{base}x y+z", f"{base}é.txt"]
    assert [p.prefix for p in v1.common_prefixes] == [f"{base}d/"]

    paged = []
    for page in client.list_objects_v2_paginator().iter_page(
            oss.ListObjectsV2Request(bucket=BUCKET, prefix=base, max_keys=2)):
        paged.extend(o.key for o in page.contents or [])
    assert paged == sorted(keys)
    v1_paged = []
    for page in client.list_objects_paginator().iter_page(
            oss.ListObjectsRequest(bucket=BUCKET, prefix=base, max_keys=4)):
        v1_paged.extend(o.key for o in page.contents or [])
    assert v1_paged == sorted(keys)


@pytest.mark.parametrize("mode", MODES)
def test_multipart(shared_env: Env, mode: str) -> None:
    client = v2_client(shared_env, mode)
    key = f"mp-v2/{mode}/object.bin"
    chunks = [os.urandom(100 * 1024), os.urandom(5000)]
    upload = client.initiate_multipart_upload(oss.InitiateMultipartUploadRequest(bucket=BUCKET, key=key))
    parts = []
    for number, data in enumerate(chunks, start=1):
        result = client.upload_part(oss.UploadPartRequest(bucket=BUCKET, key=key, upload_id=upload.upload_id,
                                                          part_number=number, body=data))
        parts.append(oss.UploadPart(part_number=number, etag=result.etag))
    listed = client.list_parts(oss.ListPartsRequest(bucket=BUCKET, key=key, upload_id=upload.upload_id))
    assert [p.part_number for p in listed.parts] == [1, 2]
    client.complete_multipart_upload(oss.CompleteMultipartUploadRequest(
        bucket=BUCKET, key=key, upload_id=upload.upload_id,
        complete_multipart_upload=oss.CompleteMultipartUpload(parts=parts)))
    assert client.get_object(oss.GetObjectRequest(bucket=BUCKET, key=key)).body.read() == b"".join(chunks)


def test_uploader_and_downloader(shared_env: Env, tmp_path) -> None:
    client = v2_client(shared_env, "root-v4")
    source = tmp_path / "src.bin"
    source.write_bytes(os.urandom(350 * 1024))
    uploader = client.uploader(part_size=100 * 1024)
    uploader.upload_file(oss.PutObjectRequest(bucket=BUCKET, key="v2-uploader/file.bin"), filepath=str(source))
    target = tmp_path / "dst.bin"
    client.downloader(part_size=100 * 1024).download_file(
        oss.GetObjectRequest(bucket=BUCKET, key="v2-uploader/file.bin"), filepath=str(target))
    assert target.read_bytes() == source.read_bytes()


@pytest.mark.parametrize("mode", ["root-v4", "root-v1"])
def test_bucket_operations(shared_env: Env, mode: str) -> None:
    client = v2_client(shared_env, mode)
    name = f"v2-bucket-{mode.replace('root-', '')}"
    client.put_bucket(oss.PutBucketRequest(bucket=name))
    info = client.get_bucket_info(oss.GetBucketInfoRequest(bucket=name))
    assert info.bucket_info.name == name
    rules = oss.CORSConfiguration(cors_rules=[oss.CORSRule(allowed_origins=["https://a.example"],
                                                           allowed_methods=["GET", "PUT"], max_age_seconds=60)])
    client.put_bucket_cors(oss.PutBucketCorsRequest(bucket=name, cors_configuration=rules))
    got = client.get_bucket_cors(oss.GetBucketCorsRequest(bucket=name))
    assert got.cors_configuration.cors_rules[0].allowed_methods == ["GET", "PUT"]
    assert name in [b.name for b in client.list_buckets(oss.ListBucketsRequest()).buckets]
    client.delete_bucket_cors(oss.DeleteBucketCorsRequest(bucket=name))
    client.delete_bucket(oss.DeleteBucketRequest(bucket=name))
    assert not client.is_bucket_exist(name)
