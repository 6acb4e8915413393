"""A LocalCloud shared by the storage tests of a module (keeps the suite fast)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from local.cloud import LocalCloud
from tests.sign.helpers import local_cloud


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    with local_cloud(tmp_path_factory.mktemp("storage") / "data") as started:
        yield started
