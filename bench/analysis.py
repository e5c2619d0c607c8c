"""Hand-written reading of the measurements, per workload, shown in results.md beside the numbers.

Kept apart from the code that measures so that the report never claims what a run did not show:
each text says what the profile and the baseline point at, and is revised when the numbers move.
"""

from __future__ import annotations

ANALYSIS: dict[str, str] = {}
