"""template.yml is the single deployment descriptor: check it against the code it deploys."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import yaml

from local import template
from shared import config
from tests.deploy.example import PARAMETERS, WITH_API_DOMAIN

ROOT = Path(__file__).resolve().parents[2]
RAW = yaml.safe_load((ROOT / "template.yml").read_text())
REQUIRED = PARAMETERS
LOADED = template.load(parameters=REQUIRED)
HTTP_METHODS = {"GET", "POST", "PUT", "DELETE", "HEAD", "PATCH", "OPTIONS"}


def test_authentication_has_no_default():
    # Fail closed: a stack is created only once its owner has chosen how callers are verified.
    assert "Default" not in RAW["Parameters"]["AuthMode"]
    assert "none" in RAW["Parameters"]["AuthMode"]["AllowedValues"]  # an explicit choice, then bounded by Rules


def test_format_and_resource_types_are_current_fc3():
    assert RAW["ROSTemplateFormatVersion"] == "2015-09-01"
    assert "Transform" not in RAW  # the retired Funcraft transform cannot declare python3.10
    kinds = {resource["Type"] for resource in RAW["Resources"].values()}
    assert not {k for k in kinds if k.startswith("ALIYUN::FC::") or k.startswith("Aliyun::Serverless")}
    assert {spec.short_name for spec in LOADED.functions.values()} == set(config.FUNCTIONS)
    assert all(spec.runtime == "python3.10" for spec in LOADED.functions.values())


@pytest.mark.parametrize("spec", LOADED.functions.values(), ids=lambda s: s.short_name)
def test_every_handler_path_resolves_to_a_callable(spec):
    """FC's `<file>.<method>`: the file at the root of the function's own package (functions/<name>/)."""
    for path in filter(None, (spec.handler, spec.initializer)):
        file_name, _, attribute = path.partition(".")
        source = ROOT / "functions" / spec.short_name / f"{file_name}.py"
        loader = importlib.util.spec_from_file_location(f"_{spec.short_name}_{file_name}", source)
        module = importlib.util.module_from_spec(loader)
        sys.modules[loader.name] = module  # dataclasses look their module up while it executes
        try:
            loader.loader.exec_module(module)
        finally:
            del sys.modules[loader.name]
        assert callable(getattr(module, attribute)), path


@pytest.mark.parametrize("spec", LOADED.functions.values(), ids=lambda s: s.short_name)
def test_environment_matches_what_the_shared_config_reads(spec):
    function = spec.short_name
    for name in spec.environment:
        assert name in config.VARIABLES_BY_NAME, f"{function} sets {name}, which shared.config never reads"
        assert function in config.VARIABLES_BY_NAME[name].used_by, f"{function} sets {name} but does not use it"
    for variable in config.VARIABLES:
        if function in variable.required_by:
            assert variable.name in spec.environment, f"{function} requires {variable.name}"


@pytest.mark.parametrize("spec", LOADED.functions.values(), ids=lambda s: s.short_name)
def test_template_defaults_load_as_valid_settings(spec):
    env = dict(spec.environment)
    settings = config.load(spec.short_name, env)
    assert settings.oss.bucket == LOADED.parameters["BucketName"]


def test_trigger_configs_have_fc3_shapes():
    kinds = set()
    for trigger in LOADED.triggers:
        kinds.add(trigger.type)
        cfg = trigger.config
        if trigger.type == "http":
            assert cfg["authType"] in {"anonymous", "function", "jwt"}
            assert set(cfg["methods"]) <= HTTP_METHODS and "OPTIONS" in cfg["methods"]
            assert isinstance(cfg["disableURLInternet"], bool)
        elif trigger.type == "oss":
            assert cfg["events"] and all(e.startswith("oss:ObjectCreated:") for e in cfg["events"])
            assert set(cfg["filter"]["key"]) == {"prefix", "suffix"}
            # never fires for our own output
            prefix = cfg["filter"]["key"]["prefix"]
            assert prefix and not prefix.startswith(("_links/", "_exports/"))
        elif trigger.type == "timer":
            assert isinstance(cfg["cronExpression"], str) and isinstance(cfg["enable"], bool)
            assert isinstance(cfg["payload"], str)
            json.loads(cfg["payload"])
        else:
            pytest.fail(f"unexpected trigger type {trigger.type}")
    assert kinds == {"http", "oss", "timer"}


def _actions(statement):
    actions = statement["Action"]
    return [actions] if isinstance(actions, str) else actions


@pytest.mark.parametrize("allow_write", ["false", "true"])
def test_policies_name_no_wildcard_actions_and_stay_in_the_bucket(allow_write):
    loaded = template.load(parameters={**REQUIRED, "AllowWrite": allow_write})
    bucket = loaded.parameters["BucketName"]
    for role in loaded.roles.values():
        for document in role.policies:
            for statement in document["Statement"]:
                for action in _actions(statement):
                    assert "*" not in action, f"{role.name}: wildcard action {action}"
                for resource in statement["Resource"]:
                    assert resource != "*", role.name
                    if resource.startswith("acs:oss:"):
                        assert resource.split(":", 4)[4].split("/")[0] == bucket
    vended = loaded.roles["VendedRole"]
    vended_actions = {a for d in vended.policies for s in d["Statement"] for a in _actions(s)}
    assert ("oss:PutObject" in vended_actions) == (allow_write == "true")


def test_vended_role_trusts_only_the_token_function_role():
    vended = LOADED.roles["VendedRole"]
    assert vended.trusted_services == []
    assert vended.trusted_principals == [LOADED.roles["TokenFunctionRole"].arn]
    token_role = LOADED.roles["TokenFunctionRole"]
    statements = [s for d in token_role.policies for s in d["Statement"]]
    assert [a for s in statements for a in _actions(s)] == ["sts:AssumeRole", "log:PostLogStoreLogs"]
    assert statements[0]["Resource"] == [vended.arn]


def test_every_function_logs_to_the_stack_logstore_and_may_write_there():
    for created, parameters in ((True, REQUIRED),
                                (False, {**REQUIRED, "LogProjectName": "team-logs", "LogstoreName": "oss-url"})):
        project, store = ("files-prod-logs-1234567890123456", "functions") if created else ("team-logs", "oss-url")
        resources = RAW["Resources"]
        loaded = template.load(parameters=parameters)
        for spec in loaded.functions.values():
            log_config = resources[spec.logical_id]["Properties"]["LogConfig"]
            assert {"Project", "Logstore"} <= set(log_config)
            role = loaded.role_of(spec)
            granted = [r for d in role.policies for s in d["Statement"] if "log:PostLogStoreLogs" in _actions(s)
                       for r in s["Resource"]]
            assert granted == [f"acs:log:cn-hangzhou:1234567890123456:project/{project}/logstore/{store}"]


def test_custom_domain_routes_when_enabled():
    loaded = template.load(parameters=WITH_API_DOMAIN)
    routes = {route.path: route.function for route in loaded.routes}
    assert routes == {"/sts": "files-prod-token", "/sign": "files-prod-sign", "/download/*": "files-prod-download",
                      "/": "files-prod-portal", "/openapi.json": "files-prod-portal", "/portal/*": "files-prod-portal"}
    assert LOADED.routes == []  # off by default


def test_every_function_has_a_sample_event():
    for function in config.FUNCTIONS:
        json.loads((ROOT / "events" / f"{function}.json").read_text())


def test_signer_role_by_default_trusts_only_the_link_making_functions():
    loaded = LOADED
    signer = loaded.roles["SignerRole"]
    makers = {loaded.roles[r].arn for r in ("SignFunctionRole", "DownloadFunctionRole", "OnUploadFunctionRole",
                                            "ExportFunctionRole")}
    assert set(signer.trusted_principals) == makers and signer.trusted_services == []
    assert signer.max_session_duration == 43200
    granted = {a for d in signer.policies for s in d["Statement"] for a in _actions(s)}
    assert granted == {"oss:GetObject", "oss:ListObjects"}  # each session narrows both to its scope
    for spec in loaded.functions.values():
        expected = signer.arn if spec.short_name in {"sign", "download", "on_upload", "export"} else None
        assert spec.environment.get("SIGNER_ROLE_ARN") == expected
    without = template.load(parameters={**REQUIRED, "UseSignerRole": "false"})
    assert "SignerRole" not in without.roles
    assert all(spec.environment.get("SIGNER_ROLE_ARN", "") == "" for spec in without.functions.values())
