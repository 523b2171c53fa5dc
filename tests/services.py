"""Real services for the tests: a throwaway PostgreSQL cluster and a second "machine" (a network
namespace with its own address, reached over a veth pair).

Nothing here is a mock. `PostgresServer.start` runs Debian's (or any) `initdb` + `pg_ctl` in a
temporary folder, as the `postgres` user when we are root (PostgreSQL refuses to run as root),
listening on a free loopback port (plus the host side of the test machine's veth, if any) and on
a Unix socket in that folder; `stop` removes everything. `TestMachine.create` makes the network
namespace; commands run there with their own host name, process ids and temporary folder.

Where a service cannot be had, the tests skip with the reason, unless ``LTR_REQUIRE_SERVICES=1``
(set by .ci/run) turns the skip into a failure, so CI can never pass by skipping them.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REQUIRE_ENV = "LTR_REQUIRE_SERVICES"
ROOT = Path(__file__).resolve().parents[1]


class Unavailable(Exception):
    """A service cannot be started on this machine (the message says why)."""


def unavailable(reason: str) -> None:
    """Skip, or fail when services are required (CI)."""
    if os.environ.get(REQUIRE_ENV, "") not in ("", "0"):
        pytest.fail(f"{reason} (and ${REQUIRE_ENV} requires it)", pytrace=False)
    pytest.skip(reason)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _postgres_bin() -> Path:
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    if not candidates:
        raise Unavailable(
            "PostgreSQL is not installed (no initdb on PATH or in /usr/lib/postgresql)"
        )
    return Path(candidates[-1]).parent


@dataclass
class PostgresServer:
    """A running throwaway cluster: role `user` (password auth over TCP) owns `database`."""

    root: Path
    bindir: Path
    port: int
    hosts: list[str]
    run_as: str | None
    user: str = "ltr"
    password: str = field(default_factory=lambda: "pw-" + secrets.token_hex(8))
    database: str = "ltr"

    @classmethod
    def start(
        cls, extra_hosts: list[str] | None = None, trusted_net: str | None = None
    ) -> PostgresServer:
        bindir = _postgres_bin()
        run_as = None
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                raise Unavailable("running as root and there is no 'postgres' user") from None
            run_as = "postgres"
        root = Path(tempfile.mkdtemp(prefix="ltr-pg-"))
        if run_as:
            shutil.chown(root, user=run_as)
        hosts = ["127.0.0.1", *(extra_hosts or [])]
        server = cls(root=root, bindir=bindir, port=0, hosts=hosts, run_as=run_as)
        try:
            server._init(trusted_net)
            for _ in range(3):  # the free port may be taken between choosing and binding it
                server.port = free_port()
                if server._pg_ctl_start():
                    break
            else:
                raise Unavailable(f"PostgreSQL did not start: {server.log()[-2000:]}")
            server.admin(f"CREATE ROLE {server.user} LOGIN PASSWORD '{server.password}'")
            server.create_database(server.database)
        except BaseException:
            server.stop()
            raise
        return server

    # ----------------------------------------------------------------------- internals
    def _run(
        self, *args: str, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(a) for a in args],
            user=self.run_as,
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=check,
        )

    def _init(self, trusted_net: str | None) -> None:
        result = self._run(
            self.bindir / "initdb",
            "-D", self.root / "data",
            "-U", "postgres",
            "--auth-local=trust",  # the Unix socket is in a folder only postgres can enter
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
            check=False,
        )  # fmt: skip
        if result.returncode:
            raise Unavailable(f"initdb failed: {(result.stderr or result.stdout).strip()[-500:]}")
        if trusted_net:
            with open(self.root / "data" / "pg_hba.conf", "a", encoding="ascii") as hba:
                hba.write(f"host all all {trusted_net} scram-sha-256\n")

    def _pg_ctl_start(self) -> bool:
        options = " ".join(
            [
                f"-c listen_addresses='{','.join(self.hosts)}'",
                f"-c port={self.port}",
                f"-c unix_socket_directories='{self.root}'",
                "-c max_connections=100",
                # a throwaway cluster: durability buys nothing here
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off",
            ]
        )
        result = self._run(
            self.bindir / "pg_ctl",
            "-D", self.root / "data",
            "-l", self.root / "server.log",
            "-w", "-t", "60",
            "-o", options,
            "start",
            check=False,
        )  # fmt: skip
        return result.returncode == 0

    def log(self) -> str:
        with contextlib.suppress(OSError):
            return (self.root / "server.log").read_text(errors="replace")
        return ""

    # --------------------------------------------------------------------------- public
    def admin(self, sql: str, database: str = "postgres") -> str:
        """Run SQL as the superuser over the Unix socket (psql of the same installation)."""
        psql = self.bindir / "psql"
        if not psql.exists():
            psql = Path(shutil.which("psql") or "psql")
        result = self._run(
            psql, "-h", self.root, "-p", str(self.port), "-U", "postgres", "-d", database,
            "-v", "ON_ERROR_STOP=1", "-tA", "-c", sql,
        )  # fmt: skip
        return result.stdout.strip()

    def create_database(self, name: str) -> str:
        self.admin(f'CREATE DATABASE "{name}" OWNER {self.user}')
        return name

    def url(self, database: str | None = None, host: str = "127.0.0.1") -> str:
        """A plain ``postgresql://`` URL (ltr maps it to the installed driver)."""
        return (
            f"postgresql://{self.user}:{self.password}@{host}:{self.port}/"
            f"{database or self.database}"
        )

    def stop(self) -> None:
        if (self.root / "data" / "postmaster.pid").exists():
            with contextlib.suppress(Exception):
                self._run(
                    self.bindir / "pg_ctl", "-D", self.root / "data", "-m", "immediate", "-w",
                    "stop", check=False, timeout=60,
                )  # fmt: skip
        shutil.rmtree(self.root, ignore_errors=True)


# --------------------------------------------------------------------------- test machine
@dataclass
class TestMachine:
    """A network namespace joined to ours by a veth pair: `host_address` is our side (where the
    server listens), `address` the machine's own. `command` wraps a command so that it runs
    there as a separate machine would: its own network, host name, process ids and /tmp."""

    __test__ = False  # not a test class

    namespace: str
    host_link: str
    host_address: str
    address: str
    network: str

    @classmethod
    def create(cls) -> TestMachine:
        if os.geteuid() != 0:
            raise Unavailable("a network namespace needs root")
        for tool in ("ip", "unshare", "mount"):
            if shutil.which(tool) is None:
                raise Unavailable(f"{tool!r} is not installed (iproute2 / util-linux)")
        tag = f"{os.getpid() % 100000}"
        subnet = 16 + os.getpid() % 200
        machine = cls(
            namespace=f"ltr-test-{tag}",
            host_link=f"ltrh{tag}",
            host_address=f"10.231.{subnet}.1",
            address=f"10.231.{subnet}.2",
            network=f"10.231.{subnet}.0/30",
        )
        peer = f"ltrn{tag}"
        steps = [
            ["ip", "netns", "add", machine.namespace],
            ["ip", "link", "add", machine.host_link, "type", "veth", "peer", "name", peer],
            ["ip", "link", "set", peer, "netns", machine.namespace],
            ["ip", "addr", "add", f"{machine.host_address}/30", "dev", machine.host_link],
            ["ip", "link", "set", machine.host_link, "up"],
            ["ip", "-n", machine.namespace, "addr", "add", f"{machine.address}/30", "dev", peer],
            ["ip", "-n", machine.namespace, "link", "set", peer, "up"],
            ["ip", "-n", machine.namespace, "link", "set", "lo", "up"],
        ]
        for step in steps:
            result = subprocess.run(step, capture_output=True, text=True, timeout=30)
            if result.returncode:
                machine.remove()
                raise Unavailable(f"{' '.join(step)} failed: {result.stderr.strip()}")
        return machine

    def private_dir(self, data: Path | None = None) -> str:
        """Where the machine's own folders go: an existing top-level folder, over which the
        machine mounts its own empty file system, that holds nothing it must still see (this
        Python, the repository, the data; a CI clone may well live under /tmp)."""
        visible = [Path(sys.executable), Path(sys.executable).resolve(), Path(sys.prefix), ROOT]
        visible += [data.resolve()] if data is not None else []
        for candidate in ("/mnt", "/media", "/srv", "/opt", "/home"):
            base = Path(candidate)
            if (
                base.is_dir()
                and not base.is_symlink()
                and not any(path == base or base in path.parents for path in visible)
            ):
                return candidate
        raise Unavailable("no top-level folder to give the test machine its own files")

    def data_path(self, data: Path) -> str:
        """Where `command` shows the folder `data` to the machine."""
        return f"{self.private_dir(data)}/data"

    def command(self, argv: list[str], *, hostname: str, data: Path | None = None) -> list[str]:
        """`argv` run in the namespace, under `hostname`, in new PID and mount namespaces, with
        its own empty temporary folder ($TMPDIR, also its working folder); `data` (a folder) is
        visible there read-only at `data_path(data)`. Nothing it mounts is seen by the host."""
        base = self.private_dir(data)
        script = ["set -e", f"mount -t tmpfs tmpfs {base}", f"mkdir {base}/tmp"]
        if data is not None:
            script += [
                f"mkdir {base}/data",
                f"mount --bind {_quote(str(data))} {base}/data",
                f"mount -o remount,bind,ro {base}/data",
            ]
        script += [
            f"export TMPDIR={base}/tmp",
            f"hostname {_quote(hostname)}",
            f"cd {base}/tmp",
            'exec "$@"',
        ]
        return [
            "ip", "netns", "exec", self.namespace,
            "unshare", "--uts", "--pid", "--fork", "--kill-child", "--mount-proc",
            "--propagation", "private",
            "sh", "-c", "\n".join(script), "machine", *argv,
        ]  # fmt: skip

    def remove(self) -> None:
        subprocess.run(["ip", "link", "del", self.host_link], capture_output=True, timeout=30)
        subprocess.run(["ip", "netns", "del", self.namespace], capture_output=True, timeout=30)


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def wait_for(
    predicate: Callable[[], bool], timeout: float, interval: float = 0.1, what: str = "condition"
) -> None:
    """Poll `predicate` until true; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
