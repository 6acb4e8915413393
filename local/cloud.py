"""LocalCloud: the OSS and STS emulators in one process (background threads), one shared token store.

    with LocalCloud(CloudConfig(data_dir=tmp, root_keys={"AK": "SECRET"}, buckets=["demo"])) as cloud:
        cloud.oss_endpoint  # "127.0.0.1:PORT"

``python -m local serve`` runs the same thing from the command line (see ``main``).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import Any

from local.oss import cors as cors_rules
from local.oss.api import ObjectRead, OssApi
from local.oss.auth import Verifier
from local.oss.events import DEFAULT_EVENTS, EventCallback, EventDispatcher, http_deliverer
from local.oss.server import OssHttpServer
from local.oss.storage import Storage
from local.sts import Role, StsService, TokenStore, make_sts_server

__all__ = ["CloudConfig", "LocalCloud", "ObjectRead", "Role", "main"]


@dataclass
class CloudConfig:
    data_dir: Path
    host: str = "127.0.0.1"
    oss_port: int = 0  # 0 = pick a free port
    sts_port: int = 0
    account_id: str = "1234567890123456"
    region: str = "cn-hangzhou"
    root_keys: dict[str, str] = field(default_factory=dict)  # AccessKeyId -> AccessKeySecret
    buckets: list[str] = field(default_factory=list)
    roles: list[Role] = field(default_factory=list)
    cors: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # bucket -> CORS rules
    cnames: dict[str, str] = field(default_factory=dict)  # host -> bucket
    public_read: list[str] = field(default_factory=list)  # buckets readable anonymously
    clock: Callable[[], float] = time.time  # server time (epoch seconds), injectable for tests
    virtual_host_bases: tuple[str, ...] = ("localhost",)  # "<bucket>.<base>" is virtual-host style
    # GetObject through a symlink also evaluates the requester's policies against the target (the strict
    # reading; False: only the link is checked, the weakest behaviour OSS's documentation allows).
    check_symlink_target_policy: bool = True


class LocalCloud:
    def __init__(self, config: CloudConfig) -> None:
        self.config = config
        self._oss_server: OssHttpServer | None = None
        self._sts_server: Any = None
        self._threads: list[threading.Thread] = []
        data_dir = Path(config.data_dir)
        data_dir.mkdir(parents=True, exist_ok=True)
        self.storage = Storage(data_dir / "oss")
        self.token_store = TokenStore(data_dir / "sts" / "tokens.sqlite3")
        self.sts_service = StsService(
            root_keys=dict(config.root_keys), roles=list(config.roles), store=self.token_store,
            account_id=config.account_id,
            clock=lambda: datetime.fromtimestamp(config.clock(), tz=timezone.utc),
        )
        self.dispatcher = EventDispatcher(region=config.region, account_id=config.account_id)
        verifier = Verifier(root_keys=dict(config.root_keys), tokens=self.token_store, region=config.region,
                            clock=config.clock)
        self.api = OssApi(self.storage, verifier, self.dispatcher, config.account_id, config.region, config.clock,
                          check_symlink_target_policy=config.check_symlink_target_policy)

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> LocalCloud:
        config = self.config
        for bucket in config.buckets:
            self.storage.create_bucket(bucket)
        for bucket in config.public_read:
            self.storage.create_bucket(bucket, public_read=True)
            self.storage.set_public_read(bucket, True)
        for bucket, rules in config.cors.items():
            self.storage.create_bucket(bucket)
            self.storage.set_cors(bucket, cors_rules.normalize_rules(rules))
        bases = tuple(config.virtual_host_bases) + ((config.host,) if config.host else ())
        self._oss_server = OssHttpServer((config.host, config.oss_port), self.api, cnames=dict(config.cnames),
                                         virtual_host_bases=bases)
        self._sts_server = make_sts_server(config.host, config.sts_port, self.sts_service)
        self.dispatcher.start()
        for name, server in (("oss", self._oss_server), ("sts", self._sts_server)):
            thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                      name=f"local-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        for server in (self._oss_server, self._sts_server):
            if server is not None:
                server.shutdown()
                server.server_close()
        for thread in self._threads:
            thread.join(timeout=10)
        self._threads.clear()
        self._oss_server = self._sts_server = None
        self.dispatcher.stop()
        self.storage.close()

    def __enter__(self) -> LocalCloud:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # -- endpoints ---------------------------------------------------------------------------
    @property
    def oss_endpoint(self) -> str:
        if self._oss_server is None:
            raise RuntimeError("LocalCloud is not started")
        return f"{self.config.host}:{self._oss_server.server_address[1]}"

    @property
    def sts_endpoint(self) -> str:
        if self._sts_server is None:
            raise RuntimeError("LocalCloud is not started")
        return f"{self.config.host}:{self._sts_server.server_address[1]}"

    # -- what was read ------------------------------------------------------------------------
    def object_reads(self) -> list[ObjectRead]:
        """Recent object reads (direct, through a symlink, or named by x-oss-process), oldest first: a
        judge sees here which object's bytes a request actually got."""
        return self.api.reads.entries()

    # -- events ------------------------------------------------------------------------------
    def subscribe(self, callback: EventCallback, *, bucket: str, prefix: str = "", suffix: str = "",
                  events: Sequence[str] = DEFAULT_EVENTS) -> None:
        """Deliver FC OSS-trigger events ({"events": [...]}) for matching new objects to ``callback``."""
        self.dispatcher.subscribe(callback, bucket=bucket, prefix=prefix, suffix=suffix, events=events)

    def subscribe_http(self, url: str, *, bucket: str, prefix: str = "", suffix: str = "",
                       events: Sequence[str] = DEFAULT_EVENTS) -> None:
        """POST the event JSON to ``url`` (a loopback subscriber) for matching new objects."""
        self.dispatcher.subscribe(http_deliverer(url), bucket=bucket, prefix=prefix, suffix=suffix, events=events)

    def wait_for_events(self, timeout: float = 10.0) -> bool:
        return self.dispatcher.wait_idle(timeout)


# -- command line ----------------------------------------------------------------------------------
def _pair(text: str, sep: str, what: str) -> tuple[str, str]:
    left, found, right = text.partition(sep)
    if not found or not left or not right:
        raise argparse.ArgumentTypeError(f"expected {what}")
    return left, right


def _load_roles(path: str) -> list[Role]:
    items = json.loads(Path(path).read_text())
    return [Role(arn=i["arn"], policies=list(i.get("policies", [])), trust=list(i.get("trust", [])),
                 max_session_duration=int(i.get("max_session_duration", 3600))) for i in items]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m local serve", description="Run the local OSS + STS emulators.")
    parser.add_argument("--host", default="127.0.0.1", help="listen address (default: loopback only)")
    parser.add_argument("--oss-port", type=int, default=9000)
    parser.add_argument("--sts-port", type=int, default=9001)
    parser.add_argument("--data", default=".local-data", help="data directory (objects, index, tokens)")
    parser.add_argument("--root-key", action="append", default=[], metavar="AK:SECRET",
                        type=lambda t: _pair(t, ":", "AK:SECRET"))
    parser.add_argument("--bucket", action="append", default=[], metavar="NAME")
    parser.add_argument("--roles", metavar="FILE", help="JSON list of roles {arn, policies, trust, ...}")
    parser.add_argument("--cors", metavar="FILE", help="JSON object: bucket -> list of CORS rules")
    parser.add_argument("--cname", action="append", default=[], metavar="HOST=BUCKET",
                        type=lambda t: _pair(t, "=", "HOST=BUCKET"))
    parser.add_argument("--public-read", action="append", default=[], metavar="BUCKET")
    parser.add_argument("--account-id", default="1234567890123456")
    parser.add_argument("--region", default="cn-hangzhou")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    config = CloudConfig(
        data_dir=Path(args.data), host=args.host, oss_port=args.oss_port, sts_port=args.sts_port,
        account_id=args.account_id, region=args.region, root_keys=dict(args.root_key),
        buckets=list(args.bucket), roles=_load_roles(args.roles) if args.roles else [],
        cors=json.loads(Path(args.cors).read_text()) if args.cors else {},
        cnames=dict(args.cname), public_read=list(args.public_read),
    )
    cloud = LocalCloud(config).start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(f"OSS emulator: http://{cloud.oss_endpoint}  (region {config.region}, data {config.data_dir})")
    print(f"STS emulator: http://{cloud.sts_endpoint}")
    print(f"buckets: {', '.join(config.buckets) or '(none)'}; root keys: {', '.join(config.root_keys) or '(none)'}")
    if config.cnames:
        print("cnames: " + ", ".join(f"{host} -> {bucket}" for host, bucket in config.cnames.items()))
    sys.stdout.flush()
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        cloud.stop()
    return 0
