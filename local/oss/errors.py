"""OSS error responses: the exception the emulator raises and its XML rendering."""

from __future__ import annotations

import re
from xml.sax.saxutils import escape as _escape

# Characters XML 1.0 cannot carry (C0 controls except tab/LF/CR, lone surrogates): an error document
# echoing a client's method, key or header must stay parseable, so they become U+FFFD.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def escape(text: str) -> str:
    return _escape(_NOT_XML.sub("\ufffd", text))

MESSAGES = {
    "AccessDenied": "AccessDenied",
    "SignatureDoesNotMatch": (
        "The request signature we calculated does not match the signature you provided. "
        "Check your key and signing method."
    ),
    "RequestTimeTooSkewed": "The difference between the request time and the current time is too large.",
    "InvalidAccessKeyId": "The OSS Access Key Id you provided does not exist in our records.",
    "InvalidSecurityToken": "The security token you provided is invalid.",
    "SecurityTokenExpired": "The security token you provided has expired.",
    "AccessKeyIdAndSecurityTokenNotMatch": (
        "The OSS access key id and security token you provided does not match."
    ),
    "NoSuchKey": "The specified key does not exist.",
    "NoSuchBucket": "The specified bucket does not exist.",
    "NoSuchUpload": "The specified upload does not exist. The upload ID may be invalid, "
                    "or the upload may have been aborted or completed.",
    "InvalidPart": "One or more of the specified parts could not be found or the specified entity tag "
                   "might not have matched the part's entity tag.",
    "InvalidPartOrder": "The list of parts was not in ascending order. Parts must be ordered by part number.",
    "EntityTooSmall": "Your proposed upload is smaller than the minimum allowed size.",
    "InvalidRange": "The requested range cannot be satisfied",
    "PreconditionFailed": "At least one of the pre-conditions you specified did not hold.",
    "MethodNotAllowed": "The specified method is not allowed against this resource.",
    "InvalidDigest": "The Content-MD5 you specified is not valid.",
    "BadDigest": "The Content-MD5 you specified did not match what was received.",
    "MalformedXML": "The XML you provided was not well-formed or did not validate against our published schema.",
    "BucketAlreadyExists": "The requested bucket name is not available.",
    "BucketNotEmpty": "The bucket you tried to delete is not empty.",
    "InvalidBucketName": "The specified bucket is not valid.",
    "InvalidObjectName": "The specified object is not valid.",
    "NoSuchCORSConfiguration": "The CORS configuration does not exist.",
    "AccessForbidden": "CORSResponse: This CORS request is not allowed. "
                       "This is usually because the evalution of Origin, request method / "
                       "Access-Control-Request-Method or Access-Control-Requet-Headers are not whitelisted "
                       "by the resource's CORS spec.",
    "EntityTooLarge": "Your proposed upload exceeds the maximum allowed size.",
    "MissingContentLength": "You must provide the Content-Length HTTP header.",
    "NotImplemented": "A header you provided implies functionality that is not implemented.",
}


# OSS's own detailed error codes ("EC", in the body and the x-oss-ec header), only where the documentation
# names one for the situation (https://help.aliyun.com/en/oss/user-guide/<EC> pages; oss-signing.md §7).
# A code with a single documented EC gets it by default; situations sharing a code pass ``ec=``.
EC_BY_CODE = {
    "NoSuchKey": "0026-00000001",
    "NoSuchBucket": "0015-00000101",
    "InvalidSecurityToken": "0002-00000006",
    "SecurityTokenExpired": "0002-00000007",
}
EC_POLICY_DENIED = "0003-00000301"
EC_ANONYMOUS_DENIED = "0003-00000001"
EC_V1_URL_EXPIRED = "0002-00000069"
EC_V1_SIGNATURE = "0002-00000040"
EC_V4_EXPIRES_RANGE = "0002-00000232"
EC_V4_URL_EXPIRED = "0002-00000236"
EC_V4_DATE_FORMAT = "0002-00000502"
EC_V4_CONTENT_SHA256 = "0002-00000214"


class OssError(Exception):
    """An OSS error answer: HTTP status, code, message, extra XML elements and the detailed EC."""

    def __init__(self, status: int, code: str, message: str | None = None, *, ec: str | None = None,
                 **extra: str) -> None:
        super().__init__(code)
        self.status = status
        self.code = code
        self.message = message if message is not None else MESSAGES.get(code, code)
        self.extra = extra
        self.ec = ec if ec is not None else EC_BY_CODE.get(code)
        self.headers: dict[str, str] = {}  # extra response headers (e.g. CORS on an error answer)
        if self.ec:
            self.headers["x-oss-ec"] = self.ec

    def to_xml(self, request_id: str, host_id: str) -> bytes:
        parts = [
            '<?xml version="1.0" encoding="UTF-8"?>\n<Error>',
            f"<Code>{escape(self.code)}</Code>",
            f"<Message>{escape(self.message)}</Message>",
            f"<RequestId>{escape(request_id)}</RequestId>",
            f"<HostId>{escape(host_id)}</HostId>",
        ]
        parts.extend(f"<{name}>{escape(value)}</{name}>" for name, value in self.extra.items())
        if self.ec:
            parts.append(f"<EC>{escape(self.ec)}</EC>")
            parts.append(f"<RecommendDoc>https://api.aliyun.com/troubleshoot?q={escape(self.ec)}</RecommendDoc>")
        parts.append("</Error>")
        return "".join(parts).encode()


def access_denied(message: str = "AccessDenied", *, ec: str | None = None, **extra: str) -> OssError:
    return OssError(403, "AccessDenied", message, ec=ec, **extra)


def invalid_argument(message: str, *, ec: str | None = None, **extra: str) -> OssError:
    return OssError(400, "InvalidArgument", message, ec=ec, **extra)
