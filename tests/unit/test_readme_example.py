"""The README's "Use it as a library" example runs exactly as shown, and the README starts with the two
commands of SPEC 10."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def library_example(text: str) -> str:
    """The first ```python block under the first heading that mentions "library" (and has one)."""
    in_library = False
    block: list[str] | None = None
    fence = ""
    for line in text.splitlines(keepends=True):
        if block is not None:
            if line.strip() == fence:
                return "".join(block)
            block.append(line)
        elif fence:  # inside some other fenced block: "# comments" there are not headings
            if line.strip() == fence:
                fence = ""
        elif line.lstrip().startswith(("```", "~~~")):
            marker = line.lstrip()[:3]
            fence = marker
            if in_library and line.strip()[3:].strip().lower() == "python":
                block = []
        elif re.match(r"#{1,6} ", line):
            in_library = "library" in line.lower()
    raise AssertionError("README.md has no ```python block under a heading containing 'library'")


def test_library_example_is_found_under_its_heading() -> None:
    text = (
        "# x\n```python\nfirst()\n```\n## Use it as a Library\nprose\n```sh\n# not a heading\n```\n"
        "```python\n# a comment, not a heading\nsecond()\n```\n## Next\n```python\nthird()\n```\n"
    )
    assert library_example(text) == "# a comment, not a heading\nsecond()\n"


def test_readme_library_example_runs_as_shown(tmp_path: Path) -> None:
    code = library_example(README.read_text(encoding="utf-8"))
    script = tmp_path / "example.py"
    script.write_text(code, encoding="utf-8")
    # Run from an empty directory: the example must work against the installed packages alone.
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"README example failed:\n{proc.stdout}\n{proc.stderr}"
    assert proc.stdout.strip(), "the example should print its result"


def test_readme_starts_with_the_two_commands() -> None:
    text = README.read_text(encoding="utf-8")
    assert text.startswith("# starpromo\n")
    quick = text.split("## Quick start", 1)[1]
    block = re.search(r"```\w*\n(.*?)```", quick, flags=re.DOTALL)
    assert block is not None
    lines = [line.split("#")[0].strip() for line in block.group(1).splitlines() if line.strip()]
    assert lines[:2] == ["make demo", "make test"]
