"""Shared fixtures: the whole product running locally (emulator + gateway from template.yml)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from local.up import Stack, start_stack


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The demo deployment (API-key callers, scope exampledir/), shared by the end-to-end tests."""
    stack = start_stack(data_dir=tmp_path_factory.mktemp("stack"), auth="apikey", port=0, oss_port=0, sts_port=0,
                        timers=False, echo_logs=False)
    yield stack
    stack.stop()


@pytest.fixture
def make_stack(tmp_path: Path) -> Iterator[Callable[..., Stack]]:
    """A fresh deployment with its own settings: make_stack(auth="jwt", env={"download": {...}})."""
    stacks: list[Stack] = []

    def make(**options: object) -> Stack:
        options.setdefault("data_dir", tmp_path / f"stack{len(stacks)}")
        for name in ("port", "oss_port", "sts_port"):
            options.setdefault(name, 0)
        options.setdefault("timers", False)
        options.setdefault("echo_logs", False)
        stack = start_stack(**options)  # type: ignore[arg-type]
        stacks.append(stack)
        return stack

    yield make
    for stack in stacks:
        stack.stop()
