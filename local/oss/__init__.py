"""OSS emulator: the independent judge of every request made to the local cloud.

Modules:
- ``storage``: SQLite index (bucket, key, size, etag, ...) + immutable blob files named by uuid; atomic writes.
- ``auth``: V1/V4 verification (header and presigned URL), STS tokens, source-IP binding.
- ``api``: routing and the bucket/object/multipart operations; ``rules``: digests, ranges, conditions.
- ``listing``: ListObjects v1/v2 over the index (seeks, never scans); ``cors``; ``postobject``.
- ``crc64``: CRC-64/ECMA (x-oss-hash-crc64ecma) and its combine formula; ``process``: x-oss-process parsing
  (which other objects a watermark reads).
- ``events``: Function Compute OSS-trigger events, delivered at least once.
- ``server``: the stdlib HTTP/1.1 transport (path, virtual-host and CNAME addressing; sendfile).

Start it through ``local.cloud.LocalCloud`` (or ``python -m local serve``).
"""
