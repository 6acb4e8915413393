"""Differential tests: our pre-signed URLs against oss2 2.19.1 and alibabacloud-oss-v2 1.4.1.

For generated keys, options, versions, credentials and endpoints, with the clock frozen, the path,
the decoded query multiset and the signature must equal what the SDKs produce. Where the SDKs
disagree with each other or misbehave, the known difference is asserted explicitly.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import alibabacloud_oss_v2 as oss_v2
import oss2
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from shared.disposition import content_disposition
from shared.keys import InvalidKey, is_valid_key
from shared.signing import (
    Credentials,
    Endpoint,
    PresignOptions,
    Signer,
    v1_canonical_oss_headers,
    v1_canonical_resource,
    v1_signature,
    v1_string_to_sign,
)
from tests.signing.sdk_oracles import (
    REGION,
    frozen_clock,
    oss2_bucket,
    oss2_sign_url,
    query_value,
    split_url,
    v2_presign,
)

BUCKET = "examplebucket"
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ---------------------------------------------------------------------------------------------
# Strategies
# ---------------------------------------------------------------------------------------------

SPECIAL = [*"+ %#?~/*&=;:@!$'()[],\"<>^`{|}\\.", "//", "é", "报告", "😀", "\u00a0", "\u200b", "\u2028"]
KEY_CHARS = st.one_of(st.sampled_from(SPECIAL), st.characters(blacklist_categories=("Cs", "Cc")))
KEYS = st.lists(KEY_CHARS, min_size=1, max_size=24).map("".join).filter(is_valid_key)
TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=24)
TOKENS = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=", min_size=8, max_size=40)
SECRETS = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", min_size=8, max_size=30)
NOW = st.integers(1577836800, 1893456000).map(lambda epoch: datetime.fromtimestamp(epoch, timezone.utc))
ENDPOINTS = st.sampled_from([
    Endpoint.for_region(REGION),
    Endpoint.for_region(REGION, secure=False),
    Endpoint.for_region(REGION, internal=True),
    Endpoint.accelerate(),
    Endpoint.custom_domain("files.example.com"),
    Endpoint.path_style("127.0.0.1:9000"),
])  # fmt: skip
DISPOSITIONS = st.one_of(
    TEXT,
    st.builds(content_disposition, TEXT.filter(lambda s: s.strip("/\\ .") != ""),
              st.sampled_from(["inline", "attachment"])),
)  # fmt: skip


@st.composite
def credentials(draw) -> Credentials:
    secret = draw(SECRETS)
    if draw(st.booleans()):
        return Credentials("STS." + draw(SECRETS), secret, draw(TOKENS))
    return Credentials("LTAI" + draw(SECRETS), secret)


def _maybe(draw, strategy):
    return draw(st.one_of(st.none(), strategy))


@st.composite
def download_options(draw, *, source_binding: bool = True) -> PresignOptions:
    source_ip = _maybe(draw, st.ip_addresses().map(str)) if source_binding else None
    return PresignOptions(
        response_content_disposition=_maybe(draw, DISPOSITIONS),
        response_content_type=_maybe(draw, st.sampled_from(["text/plain", "image/png; charset=x", "a/b+c"])),
        response_cache_control=_maybe(draw, st.sampled_from(["no-cache", "max-age=60, private"])),
        version_id=_maybe(draw, st.text("abcdefABCDEF0123456789+/=", min_size=1, max_size=20)),
        process=_maybe(draw, st.sampled_from(["image/resize,w_100", "style/thumb", "video/snapshot,t_0"])),
        traffic_limit=_maybe(draw, st.integers(819200, 838860800)) if source_binding else None,
        source_ip=source_ip,
        subnet_mask=draw(st.one_of(st.none(), st.integers(0, 32))) if source_ip and "." in source_ip else None,
        vpc_id=_maybe(draw, st.just("vpc-abc123")) if source_binding else None,
        forward_allow=_maybe(draw, st.booleans()) if source_ip else None,
    )


@st.composite
def upload_options(draw) -> PresignOptions:
    meta_names = st.text("abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=10)
    meta_values = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=12)
    return PresignOptions(
        content_type=_maybe(draw, st.sampled_from(["application/octet-stream", "image/jpeg", "text/plain"])),
        metadata=draw(st.dictionaries(meta_names, meta_values, max_size=3)),
        storage_class=_maybe(draw, st.sampled_from(["Standard", "IA", "Archive"])),
    )


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def has_dot_segment(key: str) -> bool:
    return any(segment in (".", "..") for segment in key.split("/"))


def assert_same_request(ours: str, theirs: str, key: str) -> None:
    """Same origin, same decoded path, same decoded query multiset (hence the same signature)."""
    our_origin, our_path, our_decoded, our_query = split_url(ours)
    their_origin, their_path, their_decoded, their_query = split_url(theirs)
    assert our_origin == their_origin
    assert our_decoded == their_decoded
    assert our_query == their_query
    if has_dot_segment(key):
        # Deliberate: we send `.`/`..` segments as %2E so HTTP clients cannot normalise them away.
        assert our_path != their_path and "%2E" in our_path
    else:
        assert our_path == their_path


def oss2_refuses(key: str) -> bool:
    """Known difference: oss2 `sign_url` refuses whitespace-only keys (`key.strip()` empty), which
    OSS accepts and we sign (alibabacloud-oss-v2 signs them too, see the v2 test)."""
    if key.strip():
        return False
    with pytest.raises(oss2.exceptions.ClientError, match="key is invalid"):
        oss2_sign_url(AK, HANGZHOU, BUCKET, key, version="v4", method="GET", expires=60, now=FIXED_NOW)
    return True


def our_url(creds, endpoint, key, *, version, method, expires, now, options) -> str:
    signer = Signer(creds, endpoint, BUCKET, region=REGION, version=version)
    presigned = signer.presign(key, expires=expires, method=method, options=options, now=now)
    assert presigned.expires_in == expires and not presigned.clamped
    return presigned.url


# ---------------------------------------------------------------------------------------------
# oss2: every option, both versions, every endpoint style
# ---------------------------------------------------------------------------------------------


@SETTINGS
@given(
    key=KEYS, creds=credentials(), endpoint=ENDPOINTS, now=NOW, version=st.sampled_from(["v4", "v1"]),
    method=st.sampled_from(["GET", "HEAD"]), expires=st.integers(60, 604800), options=download_options(),
)  # fmt: skip
@example(key="a//b/ +%#?~.txt", creds=Credentials("ak", "sk"), endpoint=Endpoint.for_region(REGION),
         now=datetime(2024, 1, 1, tzinfo=timezone.utc), version="v1", method="GET", expires=60,
         options=PresignOptions())  # fmt: skip
def test_download_urls_match_oss2(key, creds, endpoint, now, version, method, expires, options):
    ours = our_url(creds, endpoint, key, version=version, method=method, expires=expires, now=now, options=options)
    if oss2_refuses(key):
        return
    theirs = oss2_sign_url(creds, endpoint, BUCKET, key, version=version, method=method, expires=expires,
                           now=now, params=options.query_params())  # fmt: skip
    assert_same_request(ours, theirs, key)


@SETTINGS
@given(key=KEYS, creds=credentials(), endpoint=ENDPOINTS, now=NOW, version=st.sampled_from(["v4", "v1"]),
       expires=st.integers(60, 604800), options=upload_options())  # fmt: skip
def test_upload_urls_and_signed_headers_match_oss2(key, creds, endpoint, now, version, expires, options):
    signer = Signer(creds, endpoint, BUCKET, region=REGION, version=version)
    presigned = signer.presign(key, expires=expires, method="PUT", options=options, now=now)
    if oss2_refuses(key):
        return
    theirs = oss2_sign_url(creds, endpoint, BUCKET, key, version=version, method="PUT", expires=expires, now=now,
                           headers=presigned.headers)  # fmt: skip
    assert_same_request(presigned.url, theirs, key)
    assert {name.lower() for name in presigned.headers} == (
        ({"content-type"} if options.content_type else set())
        | {f"x-oss-meta-{name}" for name in options.metadata}
        | ({"x-oss-storage-class"} if options.storage_class else set())
    )


# ---------------------------------------------------------------------------------------------
# alibabacloud-oss-v2: the options its request models can express in a URL
# ---------------------------------------------------------------------------------------------

# alibabacloud-oss-v2 SignerV1._subresource_key_set: the short list, without x-oss-process.
V2_V1_SUBRESOURCES = frozenset({
    "acl", "bucketInfo", "location", "stat", "delete", "append", "tagging", "objectMeta", "uploads", "uploadId",
    "partNumber", "security-token", "position", "response-content-type", "response-content-language",
    "response-expires", "response-cache-control", "response-content-disposition", "response-content-encoding",
    "restore", "callback", "callback-var", "versions", "versioning", "versionId", "sequential",
    "continuation-token", "regionList", "cloudboxes", "symlink", "resourceGroup",
})  # fmt: skip


def v2_request(method: str, key: str, options: PresignOptions):
    if method == "PUT":
        return oss_v2.PutObjectRequest(
            bucket=BUCKET, key=key, content_type=options.content_type,
            metadata=dict(options.metadata) or None, storage_class=options.storage_class,
        )  # fmt: skip
    if method == "HEAD":
        return oss_v2.HeadObjectRequest(bucket=BUCKET, key=key, version_id=options.version_id)
    return oss_v2.GetObjectRequest(
        bucket=BUCKET, key=key, version_id=options.version_id, process=options.process,
        response_content_disposition=options.response_content_disposition,
        response_content_type=options.response_content_type, response_cache_control=options.response_cache_control,
    )  # fmt: skip


@st.composite
def v2_cases(draw):
    method = draw(st.sampled_from(["GET", "HEAD", "PUT"]))
    if method == "PUT":
        return method, draw(upload_options())
    options = draw(download_options(source_binding=False))
    if method == "HEAD":  # HeadObjectRequest has no response overrides nor process
        options = PresignOptions(version_id=options.version_id)
    return method, options


@SETTINGS
@given(key=KEYS, creds=credentials(), endpoint=ENDPOINTS, now=NOW, version=st.sampled_from(["v4", "v1"]),
       expires=st.integers(60, 604800), case=v2_cases())  # fmt: skip
@example(key=" ", creds=Credentials("ak", "sk", "tok+/="), endpoint=Endpoint.path_style("127.0.0.1:9000"),
         now=datetime(2024, 1, 1, tzinfo=timezone.utc), version="v4", expires=60,
         case=("GET", PresignOptions(process="image/resize,w_1")))  # fmt: skip
def test_urls_match_alibabacloud_oss_v2(key, creds, endpoint, now, version, expires, case):
    method, options = case
    signer = Signer(creds, endpoint, BUCKET, region=REGION, version=version)
    ours = signer.presign(key, expires=expires, method=method, options=options, now=now)
    theirs = v2_presign(creds, endpoint, v2_request(method, key, options), version=version, expires=expires, now=now)
    assert theirs.method == method
    assert {k.lower(): v for k, v in theirs.signed_headers.items()} == {
        k.lower(): v for k, v in ours.headers.items()
    }
    assert theirs.expiration == ours.expires_at
    if version == "v1" and options.process:
        # Known difference: alibabacloud-oss-v2 V1 does not sign x-oss-process (reference 1.1).
        assert query_value(ours.url, "Signature") != query_value(theirs.url, "Signature")
        assert query_value(theirs.url, "Signature") == v1_signature_with(
            V2_V1_SUBRESOURCES, creds, key, method, options, ours.validity.expires_at
        )
        assert split_url(ours.url)[3:] != split_url(theirs.url)[3:]
        return
    assert_same_request(ours.url, theirs.url, key)


def v1_signature_with(subresources, creds, key, method, options, expires_at) -> str:
    params = options.query_params()
    if creds.security_token:
        params["security-token"] = creds.security_token
    headers = options.upload_headers()
    sts = v1_string_to_sign(
        method, "", headers.get("Content-Type", ""), str(int(expires_at.timestamp())),
        v1_canonical_oss_headers(headers), v1_canonical_resource(BUCKET, key, params, subresources),
    )  # fmt: skip
    return v1_signature(creds.access_key_secret, sts)


# ---------------------------------------------------------------------------------------------
# Documented SDK differences, asserted
# ---------------------------------------------------------------------------------------------

FIXED_NOW = datetime(2023, 11, 14, 22, 13, 20, tzinfo=timezone.utc)
AK = Credentials("ak", "sk")
HANGZHOU = Endpoint.for_region(REGION)


def test_v4_eight_days_oss2_signs_it_v2_refuses_we_clamp_to_seven():
    eight_days = 8 * 86400
    theirs = oss2_sign_url(AK, HANGZHOU, BUCKET, "k", version="v4", method="GET", expires=eight_days, now=FIXED_NOW)
    assert query_value(theirs, "x-oss-expires") == "691200"  # the service refuses > 604800
    with pytest.raises(oss_v2.exceptions.PresignExpirationError):
        v2_presign(AK, HANGZHOU, oss_v2.GetObjectRequest(bucket=BUCKET, key="k"), version="v4",
                   expires=eight_days, now=FIXED_NOW)  # fmt: skip
    ours = Signer(AK, HANGZHOU, BUCKET, region=REGION).presign("k", expires=eight_days, now=FIXED_NOW)
    assert (ours.expires_in, ours.clamped, ours.clamp_reason) == (604800, True, "v4_ceiling")
    assert query_value(ours.url, "x-oss-expires") == "604800"
    seven_days = oss2_sign_url(AK, HANGZHOU, BUCKET, "k", version="v4", method="GET", expires=604800, now=FIXED_NOW)
    assert query_value(ours.url, "x-oss-signature") == query_value(seven_days, "x-oss-signature")


def test_v1_eight_days_is_not_clamped_and_matches_both_sdks():
    eight_days = 8 * 86400
    ours = Signer(AK, HANGZHOU, BUCKET, region=REGION, version="v1").presign("k", expires=eight_days, now=FIXED_NOW)
    assert not ours.clamped
    theirs = oss2_sign_url(AK, HANGZHOU, BUCKET, "k", version="v1", method="GET", expires=eight_days, now=FIXED_NOW)
    assert split_url(ours.url)[3] == split_url(theirs)[3]


def test_v1_keys_that_read_as_sub_resources_are_refused_like_oss2_does_v4_signs_them():
    """V1 signs the key raw: `?acl` would sign GetBucketAcl, `a?uploadId=1` ListParts. oss2 refuses
    `?`-leading keys by default; we refuse every key whose `?` starts a sub-resource, and sign it with V4."""
    strict = oss2.Bucket(oss2.Auth("ak", "sk"), "https://oss-cn-hangzhou.aliyuncs.com", BUCKET)
    with frozen_clock(FIXED_NOW), pytest.raises(oss2.exceptions.ClientError):
        strict.sign_url("GET", "?acl", 60, slash_safe=True)
    v1 = Signer(AK, HANGZHOU, BUCKET, region=REGION, version="v1")
    for key in ("?acl", "a?uploadId=1", "d/x?x-oss-process=y"):
        with pytest.raises(InvalidKey):
            v1.presign(key, expires=60, now=FIXED_NOW)
        with pytest.raises(InvalidKey):
            v1.presign_many(["fine.txt", key], expires=60, now=FIXED_NOW)
        with pytest.raises(InvalidKey):
            v1.sign_request("GET", key, now=FIXED_NOW)
    assert v1.presign("what?.txt", expires=60, now=FIXED_NOW).url  # a `?` that names no sub-resource is fine
    ours = Signer(AK, HANGZHOU, BUCKET, region=REGION).presign("?acl", expires=60, now=FIXED_NOW)
    theirs = oss2_sign_url(AK, HANGZHOU, BUCKET, "?acl", version="v4", method="GET", expires=60, now=FIXED_NOW)
    assert split_url(ours.url)[1] == "/%3Facl"
    assert_same_request(ours.url, theirs, "?acl")


def test_dot_segments_sdks_send_them_raw_we_escape_them():
    key = "a/../b/./c"
    ours = Signer(AK, HANGZHOU, BUCKET, region=REGION).presign(key, expires=60, now=FIXED_NOW).url
    theirs = oss2_sign_url(AK, HANGZHOU, BUCKET, key, version="v4", method="GET", expires=60, now=FIXED_NOW)
    assert split_url(theirs)[1] == "/a/../b/./c"  # an HTTP client would send /b/c
    assert split_url(ours)[1] == "/a/%2E%2E/b/%2E/c"
    assert_same_request(ours, theirs, key)


def test_oss2_default_slash_safe_false_encodes_slash_but_signs_the_same():
    ours = Signer(AK, HANGZHOU, BUCKET, region=REGION, version="v1").presign("d/k", expires=60, now=FIXED_NOW).url
    with frozen_clock(FIXED_NOW):
        theirs = oss2_bucket(AK, HANGZHOU, BUCKET, "v1").sign_url("GET", "d/k", 60)
    assert split_url(theirs)[1] == "/d%2Fk" and split_url(ours)[1] == "/d/k"
    assert split_url(theirs)[3] == split_url(ours)[3]


def test_v2_sends_traffic_limit_as_a_header_we_put_it_in_the_query_like_oss2():
    options = PresignOptions(traffic_limit=819200)
    ours = Signer(AK, HANGZHOU, BUCKET, region=REGION).presign("k", expires=60, now=FIXED_NOW, options=options)
    theirs = v2_presign(AK, HANGZHOU, oss_v2.GetObjectRequest(bucket=BUCKET, key="k", traffic_limit=819200),
                        version="v4", expires=60, now=FIXED_NOW)  # fmt: skip
    assert theirs.signed_headers == {"x-oss-traffic-limit": "819200"}
    assert query_value(ours.url, "x-oss-traffic-limit") == "819200" and not ours.headers
    oss2_url = oss2_sign_url(AK, HANGZHOU, BUCKET, "k", version="v4", method="GET", expires=60, now=FIXED_NOW,
                             params={"x-oss-traffic-limit": "819200"})  # fmt: skip
    assert split_url(ours.url)[3] == split_url(oss2_url)[3]


def test_credentials_clamp_matches_sdk_signed_with_the_clamped_expiry():
    creds = Credentials("STS.ak", "sk", "tok", expiration=FIXED_NOW + timedelta(seconds=900))
    ours = Signer(creds, HANGZHOU, BUCKET, region=REGION).presign("k", expires=3600, now=FIXED_NOW)
    assert (ours.expires_in, ours.clamp_reason) == (900, "credentials")
    theirs = oss2_sign_url(creds, HANGZHOU, BUCKET, "k", version="v4", method="GET", expires=900, now=FIXED_NOW)
    assert split_url(ours.url)[3] == split_url(theirs)[3]
