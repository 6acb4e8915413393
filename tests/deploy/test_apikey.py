"""`python -m local apikey` mints keys whose entries the template accepts and the functions honour."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from local import apikey, template
from shared import auth, config
from shared.errors import AppError
from shared.http import parse_event
from tests.deploy.example import PARAMETERS

ROOT = Path(__file__).resolve().parents[2]
PATTERN = yaml.safe_load((ROOT / "template.yml").read_text())["Parameters"]["ApiKeys"]["AllowedPattern"]


def _request(key: str):
    event = {"version": "v1", "rawPath": "/sts", "headers": {"X-Api-Key": key}, "queryParameters": {},
             "body": "", "isBase64Encoded": False,
             "requestContext": {"requestId": "r-1", "http": {"method": "POST", "path": "/sts", "sourceIp": "1.2.3.4"}}}
    return parse_event(json.dumps(event).encode())


def test_minted_keys_deploy_and_authenticate_with_their_scope():
    first_key, first = apikey.new_entry("partner-a", "partners/a/")
    second_key, second = apikey.new_entry("partner-b@example.net", "partners/b/reports/")
    value = apikey.merged(apikey.merged("", first), second)
    assert re.fullmatch(PATTERN, value)
    loaded = template.load(parameters={**PARAMETERS, "ApiKeys": value})
    settings = config.load("token", loaded.function_by_short_name("token").environment)
    assert auth.authenticate(_request(first_key), settings.auth).scope == "partners/a/"
    assert auth.authenticate(_request(second_key), settings.auth).scope == "partners/b/reports/"
    with pytest.raises(AppError) as refused:
        auth.authenticate(_request(first_key + "x"), settings.auth)
    assert refused.value.status == 401
    assert first_key not in value and second_key not in value  # only hashes are deployed


@pytest.mark.parametrize(("name", "scope"), [("p", ""), ("p", "no-slash"), ("p", "../up/"), ("p", "a/./b/"),
                                             ("p", "/abs/"), ("p", "a/*/"), ('quote"d', "a/"), ("", "a/"),
                                             ("two words", "a/"), (".hidden", "a/")])
def test_unusable_names_and_scopes_are_refused(name, scope):
    with pytest.raises(ValueError):
        apikey.new_entry(name, scope)


def test_command_prints_the_key_once_and_the_value_to_deploy():
    result = subprocess.run([sys.executable, "-m", "local", "apikey", "--name", "acme", "--scope", "partners/acme/"],
                            capture_output=True, text=True, check=True, cwd=ROOT)
    lines = [line.strip() for line in result.stdout.splitlines()]
    key, value = lines[1], lines[3]
    assert result.stdout.count(key) == 1
    assert json.loads(value) == {auth.hash_api_key(key): {"name": "acme", "scope": "partners/acme/"}}
    refused = subprocess.run([sys.executable, "-m", "local", "apikey", "--name", "acme", "--scope", "x"],
                             capture_output=True, text=True, check=False, cwd=ROOT)
    assert refused.returncode == 2 and "error:" in refused.stderr and not refused.stdout
