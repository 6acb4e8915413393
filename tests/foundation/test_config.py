import pytest

from shared import config
from shared.errors import ConfigError

BASE = {"OSS_BUCKET": "demo-bucket", "OSS_REGION": "cn-hangzhou", "AUTH_MODE": "none",
        "AUTH_ANONYMOUS_SCOPE": "public/"}


def test_missing_required_variable_names_it():
    with pytest.raises(ConfigError, match="OSS_BUCKET is required"):
        config.load("sign", {k: v for k, v in BASE.items() if k != "OSS_BUCKET"})
    with pytest.raises(ConfigError, match="STS_ROLE_ARN is required"):
        config.load("token", BASE)


@pytest.mark.parametrize(("name", "value"), [
    ("OSS_BUCKET", "Bad_Bucket"), ("OSS_BUCKET", "demo\nbucket"), ("OSS_REGION", "cn-\nhangzhou"),
    ("OSS_ENDPOINT", "oss.example.com/path"), ("OSS_ENDPOINT", "oss.example.com\n:80"), ("URL_MAX_EXPIRES", "604801"),
    ("URL_SIGNATURE_VERSION", "v2"), ("AUTH_ANONYMOUS_SCOPE", "public"), ("AUTH_ANONYMOUS_SCOPE", "a/../b/"),
    ("AUTH_ANONYMOUS_SCOPE", "pub*/"), ("JWT_JWKS_URL", "http://idp.example.com/jwks.json"),
    ("DOWNLOAD_LINK_SECRET", "short"), ("CORS_MAX_AGE", "-1"),
])
def test_invalid_values_fail_at_start_with_the_variable_named(name, value):
    with pytest.raises(ConfigError) as excinfo:
        config.load("sign", {**BASE, name: value})
    assert name in excinfo.value.message
    if config.VARIABLES_BY_NAME[name].secret:
        assert value not in excinfo.value.message


def test_jwks_url_must_be_https_except_on_loopback():
    jwt = {**BASE, "AUTH_MODE": "jwt", "JWT_ISSUER": "i", "JWT_AUDIENCE": "a"}
    assert config.load("sign", {**jwt, "JWT_JWKS_URL": "https://idp.example.com/jwks"}).auth.jwt_jwks_url
    assert config.load("sign", {**jwt, "JWT_JWKS_URL": "http://127.0.0.1:8080/jwks"}).auth.jwt_jwks_url


def test_cross_variable_rules():
    with pytest.raises(ConfigError, match="AUTH_ANONYMOUS_SCOPE"):
        config.load("sign", {**BASE, "AUTH_ANONYMOUS_SCOPE": ""})
    with pytest.raises(ConfigError, match="JWT_ALGORITHMS"):
        config.load("sign", {**BASE, "AUTH_MODE": "jwt", "JWT_ALGORITHMS": "none", "JWT_HS256_SECRET": "x" * 32,
                             "JWT_ISSUER": "i", "JWT_AUDIENCE": "a"})
    with pytest.raises(ConfigError, match="URL_MIN_EXPIRES"):
        config.load("sign", {**BASE, "URL_MIN_EXPIRES": "600", "URL_MAX_EXPIRES": "300"})


def test_settings_are_immutable_and_secrets_stay_out_of_repr():
    settings = config.load("download", {**BASE, "DOWNLOAD_LINK_SECRET": "s3cr3t-link-value-0123456789"})
    with pytest.raises(AttributeError):
        settings.oss.bucket = "other"  # type: ignore[misc]
    assert "s3cr3t-link-value" not in repr(settings)
    assert settings.oss.uses_path_style(config.ConfiguredHost("127.0.0.1:9000")) is True
    assert settings.oss.uses_path_style(config.ConfiguredHost("oss-cn-hangzhou.aliyuncs.com")) is False
