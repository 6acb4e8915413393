"""OSS request signing: pre-signed URLs and Authorization headers, V4 and V1.

Pure: stdlib only (hmac, hashlib, urllib.parse), no network, no SDK. Laid out as botocore lays out its
signers: ``v4.py`` and ``v1.py`` each hold their canonical pieces and one class per placement (query
string, Authorization header); ``signer.py`` is the orchestrator that picks one for its version and
reuses everything that does not depend on the key; ``endpoints.py`` says where requests go;
``model.py`` holds the validated inputs and outputs. Wire rules: docs/reference oss-signing.md.
"""

from shared.keys import (
    CredentialsExpiring,
    ExpiresTooShort,
    InvalidBucket,
    InvalidExpires,
    InvalidKey,
    InvalidOption,
    KeyOutsideScope,
    SigningError,
)
from shared.signing.endpoints import Endpoint
from shared.signing.model import Credentials, PresignedUrl, PresignOptions, SignedRequest
from shared.signing.signer import Signer
from shared.signing.v1 import (
    V1_SUBRESOURCES,
    V1HeaderAuth,
    V1QueryAuth,
    http_date,
    is_v1_ambiguous_key,
    v1_canonical_oss_headers,
    v1_canonical_resource,
    v1_signature,
    v1_string_to_sign,
)
from shared.signing.v4 import (
    V4_ALGORITHM,
    V4HeaderAuth,
    V4QueryAuth,
    v4_additional_headers,
    v4_canonical_headers,
    v4_canonical_query,
    v4_canonical_request,
    v4_scope,
    v4_signature,
    v4_signing_key,
    v4_string_to_sign,
    v4_timestamp,
)

__all__ = [
    "V1_SUBRESOURCES",
    "V4_ALGORITHM",
    "Credentials",
    "CredentialsExpiring",
    "Endpoint",
    "ExpiresTooShort",
    "InvalidBucket",
    "InvalidExpires",
    "InvalidKey",
    "InvalidOption",
    "KeyOutsideScope",
    "PresignOptions",
    "PresignedUrl",
    "SignedRequest",
    "Signer",
    "SigningError",
    "V1HeaderAuth",
    "V1QueryAuth",
    "V4HeaderAuth",
    "V4QueryAuth",
    "http_date",
    "is_v1_ambiguous_key",
    "v1_canonical_oss_headers",
    "v1_canonical_resource",
    "v1_signature",
    "v1_string_to_sign",
    "v4_additional_headers",
    "v4_canonical_headers",
    "v4_canonical_query",
    "v4_canonical_request",
    "v4_scope",
    "v4_signature",
    "v4_signing_key",
    "v4_string_to_sign",
    "v4_timestamp",
]
