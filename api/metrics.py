"""Prometheus metrics of one API process (its own registry, so tests can run many apps).

Request figures are counted by this process. Execution figures come from the read models the
workflows projector keeps (`workflow_execution_stats`, `execution_duration_bucket`), read at each
scrape: they are the same in every API process whichever process ran the runs (workers of
`a2n work` serve no /metrics), they only ever grow (retention prunes runs, never these
counters), and reading them costs one row per workflow that ran plus one per bucket. Queue
depth and workers come from the queue and the workers' heartbeats, shared through Redis.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from domain.executions.durations import DURATION_BUCKETS

# `*_created` series double the output and no alert uses them.
disable_created_metrics()  # type: ignore[no-untyped-call]

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass(frozen=True)
class RunCounts:
    """Ended runs of one workflow by outcome (workflow_execution_stats)."""

    workflow_id: str
    succeeded: int
    failed: int
    """Failed or timed out."""
    ended: int
    """Every ending, cancellations included."""


@dataclass
class ExecutionFigures:
    """What the read models say about runs, at the last scrape."""

    runs: list[RunCounts] = field(default_factory=list)
    buckets: list[tuple[float, int]] = field(
        default_factory=lambda: [(bound, 0) for bound in (*DURATION_BUCKETS, math.inf)]
    )
    """(upper bound in seconds, runs in that bucket alone), every bound and +Inf."""
    duration_sum: float = 0.0
    """Seconds of every timed run, summed."""


class ExecutionCollector(Collector):
    """`a2n_executions_total` and `a2n_execution_duration_seconds` from the latest figures."""

    def __init__(self) -> None:
        self.figures = ExecutionFigures()

    def collect(self) -> Iterator[Metric]:
        figures = self.figures
        runs = CounterMetricFamily(
            "a2n_executions",
            "Runs that ended, by workflow and outcome (SUCCESS, FAILED: failed or timed out, "
            "CANCELLED), from the workflows projector's counters.",
            labels=["workflow_id", "status"],
        )
        for counts in figures.runs:
            cancelled = counts.ended - counts.succeeded - counts.failed
            for status, value in (
                ("SUCCESS", counts.succeeded),
                ("FAILED", counts.failed),
                ("CANCELLED", cancelled),
            ):
                runs.add_metric([counts.workflow_id, status], value)
        yield runs
        cumulative, total = [], 0
        for bound, count in figures.buckets:
            total += count
            cumulative.append(("+Inf" if bound == math.inf else f"{bound:g}", total))
        yield HistogramMetricFamily(
            "a2n_execution_duration_seconds",
            "Duration of the runs that ended (those that started), from start to end.",
            buckets=cumulative,
            sum_value=figures.duration_sum,
        )


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.executions = ExecutionCollector()
        self.registry.register(self.executions)
        self.requests = Counter(
            "a2n_http_requests",
            "HTTP requests answered, by method, route template and status code.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "a2n_http_request_duration_seconds",
            "Time from request start to the last response byte, by method and route template.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.projection_lag = Gauge(
            "a2n_projection_lag_events",
            "Events in a context's log that a projector has not applied yet.",
            ["projector", "application"],
            registry=self.registry,
        )
        self.projection_position = Gauge(
            "a2n_projection_position",
            "Last notification id a projector applied from a context's log.",
            ["projector", "application"],
            registry=self.registry,
        )
        self.projection_parked = Gauge(
            "a2n_projection_parked",
            "1 while a projector is stopped on a parked (poison) event.",
            ["projector"],
            registry=self.registry,
        )
        self.projector_restarts = Gauge(
            "a2n_projector_restarts",
            "Restarts of the projector loops this process runs (in a2n up with a projector "
            "child: of the child) since this process started.",
            ["projector"],
            registry=self.registry,
        )
        self.pool_connections = Gauge(
            "a2n_db_pool_connections",
            "PostgreSQL connections per pool of this process: size (open), available (idle), "
            "max, waiting (requests).",
            ["pool", "state"],
            registry=self.registry,
        )

        self.pool_in_use = Gauge(
            "a2n_db_pool_connections_in_use",
            "PostgreSQL connections per pool of this process lent out now (size - available).",
            ["pool"],
            registry=self.registry,
        )
        self.db_round_trip = Gauge(
            "a2n_db_round_trip_seconds",
            "Time of a `SELECT 1` on the read pool, measured at this scrape.",
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "a2n_queue_depth",
            "Runs waiting or being run per priority band of the execution queue (high: priority "
            "above 0, normal: 0, low: below 0).",
            ["band"],
            registry=self.registry,
        )
        self.workers = Gauge(
            "a2n_workers",
            "Workers whose heartbeat is fresh, busy (running at least one run) or idle.",
            ["state"],
            registry=self.registry,
        )
        self.worker_slots = Gauge(
            "a2n_worker_slots",
            "Runs the live workers are running (busy) and could still take (free).",
            ["state"],
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
