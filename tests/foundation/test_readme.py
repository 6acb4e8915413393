"""The README promises two commands and documents every environment variable: keep it honest."""

import re
from pathlib import Path

from local.docs import BEGIN, END, env_table
from shared import config

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_env_table_is_the_one_generated_from_the_config_registry():
    between = README.split(BEGIN, 1)[1].split(END, 1)[0].strip()
    assert between == env_table(), "run `python -m local env-table` and paste it into README.md"
    for variable in config.VARIABLES:
        assert f"`{variable.name}`" in between


def test_readme_states_the_two_commands_and_ci_runs_the_test_one():
    assert re.search(r"^make run\b", README, re.M) and re.search(r"^make test\b", README, re.M)
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci
