"""Prometheus metrics of worker pools, served by the operator (labels: the pool name)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

QUEUED = Gauge("conveyor_pool_queued_tasks", "Tasks waiting on the pool's stream.", ["pool"])
IN_FLIGHT = Gauge("conveyor_pool_in_flight_tasks",
                  "Tasks claimed by the pool's workers and not yet acknowledged.", ["pool"])
TIMERS_DUE = Gauge("conveyor_pool_timers_due_tasks",
                   "Durable timers of the pool falling due within the horizon.", ["pool"])
DESIRED = Gauge("conveyor_pool_desired_replicas", "Replicas the scaler wants.", ["pool"])
CURRENT = Gauge("conveyor_pool_current_replicas", "Replicas of the pool's Deployment.", ["pool"])
SCALE_EVENTS = Counter("conveyor_pool_scale_events_total",
                       "Scale decisions carried out, by direction (up, down).",
                       ["pool", "direction"])
CRD_MISMATCH = Gauge("conveyor_operator_crd_mismatch",
                     "1 while an installed CRD does not match this operator's, else 0.",
                     ["crd"])
