"""Fixtures: a LocalCloud on ephemeral loopback ports in a tmp dir, with an adjustable clock."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from local.cloud import LocalCloud
from tests.local.support import Clock, Env, make_config


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    clock = Clock()
    with LocalCloud(make_config(tmp_path / "data", clock)) as cloud:
        yield Env(cloud, clock, tmp_path / "data")


@pytest.fixture(scope="module")
def shared_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    """One cloud for a whole module of read-mostly SDK tests (keeps the suite fast)."""
    data = tmp_path_factory.mktemp("cloud") / "data"
    clock = Clock()
    with LocalCloud(make_config(data, clock)) as cloud:
        yield Env(cloud, clock, data)
