"""Prometheus metrics of one API process (its own registry, so tests can run many apps)."""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

# `*_created` series double the output and no alert uses them.
disable_created_metrics()  # type: ignore[no-untyped-call]

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
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
            "Restarts of in-process projector loops since this process started.",
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

    def render(self) -> bytes:
        return generate_latest(self.registry)
