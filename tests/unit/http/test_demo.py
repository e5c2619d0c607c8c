"""``starpromo demo`` as a new user runs it: the printed curl lines work as pasted and the codes redeem."""

from __future__ import annotations

import collections
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from entrypoints.cli.demo import DEMO_CAMPAIGNS, DEMO_OPERATOR
from entrypoints.cli.demo_history import HISTORY_CAMPAIGN, LEAKED_CAMPAIGN

STARPROMO = str(Path(sys.executable).parent / "starpromo")


def _start_demo(tmp_path: Path, env: dict[str, str]) -> tuple[subprocess.Popen[str], list[str]]:
    """The demo with its output and its log in one stream, as a terminal shows them: the lines up to the banner's
    last; the rest is read (and dropped) on a thread so the demo never blocks on a full pipe."""
    proc = subprocess.Popen([STARPROMO, "demo", "--port", "0"], cwd=tmp_path, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    out = proc.stdout
    lines: list[str] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = out.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        if line.startswith("Ctrl+C"):
            threading.Thread(target=lambda: collections.deque(out, maxlen=0), daemon=True).start()
            return proc, lines
    proc.kill()
    pytest.fail(f"demo did not start: {lines}")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    """One demo run for the module (it takes seconds to seed): its banner lines."""
    tmp_path = tmp_path_factory.mktemp("demo")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("INTERNAL_", "PROMO_", "DATABASE_", "OPS_SESSION_"))}
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'demo.db'}"
    proc, lines = _start_demo(tmp_path, env)
    try:
        yield lines
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _paste(line: str) -> dict[str, object]:
    out = subprocess.run(["bash", "-c", line], capture_output=True, text=True, timeout=30, check=True)
    return dict(json.loads(out.stdout))


def test_printed_curl_lines_work_as_pasted_and_the_codes_redeem(demo: list[str]) -> None:
    lines = demo
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
    names = {item["name"] for item in listed["items"]}  # type: ignore[attr-defined]
    assert {c.spec.name for c in DEMO_CAMPAIGNS} | {HISTORY_CAMPAIGN, LEAKED_CAMPAIGN} == names


def test_banner_starts_with_the_console_and_a_sign_in_that_works(demo: list[str]) -> None:
    import requests

    lines = demo
    # The first line on the terminal, log included: no library (or set-up) line before it (SPEC 10).
    console = re.match(r"starpromo demo: ops console on (http://\S+/ops/)", lines[0])
    assert console, lines[:3]
    assert not [line for line in lines if line.startswith("{")], "a log line inside the banner"
    sign_in = re.match(rf"\s+sign in as: {DEMO_OPERATOR}\s+password: (\S+)", lines[1])
    assert sign_in, lines[:3]
    first_curl = next(i for i, ln in enumerate(lines) if ln.startswith("curl "))
    assert first_curl > 1
    with requests.Session() as browser:
        page = browser.get(console.group(1) + "sign-in", timeout=10)
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token
        overview = browser.post(console.group(1) + "sign-in", timeout=10, data={
            "name": DEMO_OPERATOR, "password": sign_in.group(1), "csrf_token": token.group(1)})
        assert overview.status_code == 200 and overview.url == console.group(1)
        # Three days of history: the charts have points and the figures are not zero.
        week = browser.get(console.group(1), params={"window_hours": "168"}, timeout=10)
        assert "Attempts by result" in week.text and "<polyline" in week.text
        attempts = re.search(r'Attempts</div><div class="value">([\d,]+)<', week.text)
        assert attempts and int(attempts.group(1).replace(",", "")) > 100
