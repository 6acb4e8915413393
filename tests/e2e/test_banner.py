"""`make run` prints ready-to-paste commands: each curl line in the banner works as printed."""

from __future__ import annotations

import shlex
import shutil
import subprocess

import pytest

from local.up import banner


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_every_curl_command_in_the_banner_succeeds(local_stack):
    text = banner(local_stack)
    commands = [line.strip() for line in text.splitlines() if line.strip().startswith("curl ")]
    assert len(commands) >= 4
    assert local_stack.secrets.api_key in text and local_stack.gateway.url in text
    for command in commands:
        args = shlex.split(command)
        completed = subprocess.run([*args, "--fail-with-body", "--max-time", "20"], capture_output=True, text=True,
                                   check=False)
        assert completed.returncode == 0, (command, completed.stdout[:300])
        assert completed.stdout.strip(), command
