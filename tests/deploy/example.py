"""A parameter set a production user could pass to CreateStack (each required parameter, plausible values)."""

import json

API_KEYS = json.dumps({"a" * 64: {"name": "partner-a", "scope": "partners/a/"}}, separators=(",", ":"))
CERTIFICATE = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"
PRIVATE_KEY = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----"

PARAMETERS = {"NamePrefix": "files-prod", "BucketName": "my-files", "CodeBucket": "my-code-bucket",
              "AuthMode": "apikey", "ApiKeys": API_KEYS}
WITH_API_DOMAIN = {**PARAMETERS, "ApiDomainName": "files.example.com", "ApiDomainCertificate": CERTIFICATE,
                   "ApiDomainPrivateKey": PRIVATE_KEY, "DownloadLinkSecret": "k" * 32}
