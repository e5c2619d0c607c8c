"""``starpromo demo`` as a new user runs it: the printed curl lines work as pasted and the codes redeem."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from entrypoints.cli.demo import DEMO_CAMPAIGNS

STARPROMO = str(Path(sys.executable).parent / "starpromo")


def _start_demo(tmp_path: Path, env: dict[str, str]) -> tuple[subprocess.Popen[str], list[str]]:
    proc = subprocess.Popen([STARPROMO, "demo", "--port", "0"], cwd=tmp_path, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        if line.startswith("Ctrl+C"):
            return proc, lines
    proc.kill()
    pytest.fail(f"demo did not start: {lines}")


@pytest.fixture
def demo_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INTERNAL_", "PROMO_", "DATABASE_"))}
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'demo.db'}"
    yield env


def _paste(line: str) -> dict[str, object]:
    out = subprocess.run(["bash", "-c", line], capture_output=True, text=True, timeout=30, check=True)
    return dict(json.loads(out.stdout))


def test_printed_curl_lines_work_as_pasted_and_the_codes_redeem(tmp_path: Path, demo_env: dict[str, str]) -> None:
    proc, lines = _start_demo(tmp_path, demo_env)
    try:
        curls = [ln for ln in lines if ln.startswith("curl ")]
        assert len(curls) == 4
        assert "X-Internal-Token: " in curls[0]
        discount = _paste(curls[0])
        assert discount["result"] == "ACCEPTED"
        assert discount["redemption"]["status"] == "RESERVED"  # type: ignore[index]
        stars = _paste(curls[1])
        assert stars["result"] == "ACCEPTED"
        assert stars["redemption"]["discount_stars"] == 50  # type: ignore[index]
        grant = _paste(curls[2])
        assert grant["result"] == "ACCEPTED"
        assert grant["redemption"]["grant_days"] == 30  # type: ignore[index]
        # Pasting the same line again replays the first answer (same idempotency key).
        assert _paste(curls[0])["replayed"] is True
        listed = _paste(curls[3])
        assert len(listed["items"]) == len(DEMO_CAMPAIGNS)  # type: ignore[arg-type]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
