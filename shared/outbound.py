"""The container's one connection pool for outbound HTTP (OSS requests, webhooks).

urllib3 keys connections by host, so one PoolManager serves every destination; building it lazily keeps
it out of the cold start of handlers that never make an outbound request. Retries are ours, not
urllib3's: each caller decides what is safe to retry.
"""

from __future__ import annotations

import threading

import urllib3

_pool: urllib3.PoolManager | None = None
_lock = threading.Lock()


def connection_pool() -> urllib3.PoolManager:
    global _pool
    if _pool is None:
        with _lock:
            if _pool is None:
                _pool = urllib3.PoolManager(num_pools=8, maxsize=16, retries=False, block=False)
    return _pool
