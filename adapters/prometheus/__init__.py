"""Prometheus metrics (SPEC 15): the event counters and timings, and the gauges read from the database."""

from adapters.prometheus.metrics import (
    CONTENT_TYPE,
    PrometheusMetrics,
    mark_process_dead,
    multiprocess_dir,
    one_file_per_forking_parent,
    process_metrics,
    use_multiprocess_dir,
)
from adapters.prometheus.state import StateGauges

__all__ = [
    "CONTENT_TYPE",
    "PrometheusMetrics",
    "StateGauges",
    "mark_process_dead",
    "multiprocess_dir",
    "one_file_per_forking_parent",
    "process_metrics",
    "use_multiprocess_dir",
]
