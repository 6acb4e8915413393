"""x-oss-forbid-overwrite is atomic: of many concurrent creates of one key, exactly one succeeds."""

from concurrent.futures import ThreadPoolExecutor

import oss2

from tests.local.support import BUCKET, REGION, ROOT_AK, ROOT_SECRET


def test_concurrent_creates_with_forbid_overwrite_exactly_one_wins(env):
    bucket = oss2.Bucket(oss2.AuthV4(ROOT_AK, ROOT_SECRET), env.endpoint, BUCKET, region=REGION)

    def create(n: int) -> str:
        try:
            bucket.put_object("race/once.json", f"writer {n}".encode() * 2000,
                              headers={"x-oss-forbid-overwrite": "true"})
            return "created"
        except oss2.exceptions.OssError as error:
            return error.code

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(create, range(16)))
    assert outcomes.count("created") == 1
    assert set(outcomes) == {"created", "FileAlreadyExists"}
