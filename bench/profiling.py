"""pyinstrument summaries of a hot path: the frames with the most self time, and the call tree's top."""

from __future__ import annotations

import re
from collections.abc import Callable

from pyinstrument import Profiler

# A frame line of pyinstrument's text output (the banner and footer lines are dropped).
_FRAME = re.compile(r"^[\s|`\-]*\d+(\.\d+)?%")


def profile_calls(fn: Callable[[int], object], calls: int, top: int = 25) -> str:
    """Run ``fn(i)`` ``calls`` times on this thread under pyinstrument; a plain-text summary."""
    profiler = Profiler(interval=0.0005, async_mode="disabled")
    profiler.start()
    for i in range(calls):
        fn(i)
    session = profiler.stop()
    total = session.duration
    flat = profiler.output_text(unicode=False, color=False, flat=True, time="percent_of_total").splitlines()
    tree = profiler.output_text(unicode=False, color=False, time="percent_of_total").splitlines()
    body_flat = [ln for ln in flat if _FRAME.match(ln)]
    body_tree = [ln for ln in tree if _FRAME.match(ln)]
    per_call_ms = total / calls * 1000 if calls else 0.0
    return "\n".join([
        f"pyinstrument: {calls} calls on one thread, {total:.2f} s wall, {per_call_ms:.3f} ms per call",
        "",
        "Top frames by self time (share of total):",
        *body_flat[:top],
        "",
        "Call tree (top):",
        *body_tree[:45],
    ])
