"""template.yml passes the offline ROS checker: alone, and with the parameters `python -m local up` deploys."""

from pathlib import Path

import pytest
import yaml

from local import roscheck, template
from local.roscheck.check import environment_sizes
from local.up import Secrets, template_parameters

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yml"


def test_template_passes_the_ros_checker():
    problems = roscheck.check_file(TEMPLATE)
    assert not roscheck.errors(problems), roscheck.report(problems, TEMPLATE)


def test_template_warnings_are_only_the_known_kinds():
    # NoEcho values in plain environment variables have no alternative yet (no secret store in the stack);
    # anything else the checker warns about (unused parameters or conditions) is a defect of the template.
    kinds = {p.code for p in roscheck.check_file(TEMPLATE) if p.level == roscheck.WARNING}
    assert kinds <= {"noecho-in-environment"}


@pytest.mark.parametrize("auth", ["apikey", "jwt", "none"])
def test_the_local_stack_parameters_pass_the_template_and_its_rules(auth, tmp_path):
    values = template_parameters(auth, Secrets.load(tmp_path), {}, data_dir=tmp_path)
    problems = roscheck.check(yaml.safe_load(TEMPLATE.read_text()), values)
    assert not roscheck.errors(problems), roscheck.report(problems, TEMPLATE)


@pytest.mark.parametrize("auth", ["apikey", "jwt", "none"])
def test_environment_estimate_bounds_what_the_stack_resolves(auth, tmp_path):
    values = template_parameters(auth, Secrets.load(tmp_path), {}, data_dir=tmp_path)
    resolved = template.load(TEMPLATE, parameters=values)
    # every parameter's value as the stack has it (defaults included), so no MaxLength stands in for one
    estimated = environment_sizes(yaml.safe_load(TEMPLATE.read_text()), resolved.parameters)
    assert {spec.logical_id for spec in resolved.functions.values()} == set(estimated)
    for spec in resolved.functions.values():
        actual = sum(len(name.encode()) + len(value.encode()) for name, value in spec.environment.items())
        # the estimate takes role ARNs and the region at their longest; everything else is the value given
        assert actual <= estimated[spec.logical_id][0] <= actual + 4 * 128, spec.logical_id
