"""OSS error responses: the exception the emulator raises and its XML rendering."""

from __future__ import annotations

from xml.sax.saxutils import escape

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


class OssError(Exception):
    """An OSS error answer: HTTP status, code, message and extra XML elements."""

    def __init__(self, status: int, code: str, message: str | None = None, **extra: str) -> None:
        super().__init__(code)
        self.status = status
        self.code = code
        self.message = message if message is not None else MESSAGES.get(code, code)
        self.extra = extra
        self.headers: dict[str, str] = {}  # extra response headers (e.g. CORS on an error answer)

    def to_xml(self, request_id: str, host_id: str) -> bytes:
        parts = [
            '<?xml version="1.0" encoding="UTF-8"?>\n<Error>',
            f"<Code>{escape(self.code)}</Code>",
            f"<Message>{escape(self.message)}</Message>",
            f"<RequestId>{escape(request_id)}</RequestId>",
            f"<HostId>{escape(host_id)}</HostId>",
        ]
        parts.extend(f"<{name}>{escape(value)}</{name}>" for name, value in self.extra.items())
        parts.append("</Error>")
        return "".join(parts).encode()


def access_denied(message: str = "AccessDenied", **extra: str) -> OssError:
    return OssError(403, "AccessDenied", message, **extra)


def invalid_argument(message: str, **extra: str) -> OssError:
    return OssError(400, "InvalidArgument", message, **extra)
