"""Starts and stops `writ serve` for the tests: on loopback, a free port,
a fresh registry and audit log in a temporary directory, serving the
MeshGuard seed policies unchanged (copied from examples/seeds).

The binary is WRIT_CLI, or target/release/writ, or target/debug/writ.
"""

import os
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SEEDS = ROOT / "examples" / "seeds"
SECRET = "0123456789abcdef0123456789abcdef-test"
ADMIN = "admin-token-for-tests-0123456789"


def writ_cli() -> str:
    env = os.environ.get("WRIT_CLI")
    if env:
        return env
    for profile in ("release", "debug"):
        p = ROOT / "target" / profile / "writ"
        if p.exists():
            return str(p)
    raise RuntimeError("no writ binary: build it (cargo build --release) or set WRIT_CLI")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, tmp: Path, policies: list, env: dict, args: list):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.tmp = tmp
        self.policy_dir = tmp / "policies"
        self.policy_dir.mkdir(exist_ok=True)
        for p in policies:
            shutil.copy(SEEDS / p, self.policy_dir / p)
        full_env = dict(os.environ)
        full_env.update(
            {
                "PORT": str(self.port),
                "HOST": "127.0.0.1",
                "POLICIES_DIR": str(self.policy_dir),
                "DB_PATH": str(tmp / "registry.db"),
                "JWT_SECRET": SECRET,
                "ADMIN_TOKEN": ADMIN,
            }
        )
        full_env.update(env)
        self.log = open(tmp / "server.log", "w")
        self.proc = subprocess.Popen(
            [writ_cli(), "serve", "--audit-path", str(tmp / "audit.db"), *args],
            env=full_env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"writ serve exited: {self.read_log()}")
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"writ serve did not start: {self.read_log()}")

    def read_log(self) -> str:
        self.log.flush()
        return (self.tmp / "server.log").read_text()

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


@pytest.fixture
def serve(tmp_path):
    started = []

    def start(policies=("meshguard-openai-support.yaml", "meshguard-support-agents.yaml"), env=None, args=()):
        s = Server(tmp_path, list(policies), env or {}, list(args))
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()
        assert s.proc.returncode == 0, f"writ serve did not stop cleanly: {s.read_log()}"
