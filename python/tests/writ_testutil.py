"""Shared helpers for the engine tests (not a test module)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Callable, Optional

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
SUPPORT = EXAMPLES / "support.writ"
NOON = "2025-01-15T12:00:00Z"  # a Wednesday, 07:00 in New York


def writ_cli() -> Optional[Path]:
    """The built `writ` binary with `writ audit`, if there is one (the newest
    of target/release and target/debug, or $WRIT_CLI, or `writ` on PATH)."""
    env = os.environ.get("WRIT_CLI")
    candidates = [Path(env)] if env else []
    built = [ROOT / "target" / p / "writ" for p in ("release", "debug")]
    candidates += sorted((p for p in built if p.exists()), key=lambda p: p.stat().st_mtime, reverse=True)
    found = shutil.which("writ")
    if found:
        candidates.append(Path(found))
    for cli in candidates:
        ok = subprocess.run([str(cli), "audit", "--help"], capture_output=True, check=False)
        if ok.returncode == 0:
            return cli
    return None


def audit_verify(path: Path) -> Optional[subprocess.CompletedProcess]:
    cli = writ_cli()
    if cli is None:
        return None
    return subprocess.run(
        [str(cli), "audit", "verify", str(path)], capture_output=True, text=True, check=False
    )


def wait_for(cond: Callable[[], bool], timeout: float = 10.0, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(step)
    return cond()


def write_atomically(path: Path, text: str) -> None:
    """Writes a new version of a file the way deploys do: a temporary file renamed over it."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


LIMIT_POLICY = """\
policy "limits" {
  combine first-match
  default deny
}

agent "bot" {
  tier verified
}

rule search: allow "tool:call" on search
  limit 3 per hour

rule read: allow "tool:call" on read
"""
