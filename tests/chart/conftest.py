"""Fixtures of the chart tests: the end-to-end API server fixtures (``apiserver``,
``kubeconfig``, ``kubectl``) of tests/e2e, reused to apply rendered manifests."""

from tests.e2e.conftest import apiserver, kubeconfig, kubectl  # noqa: F401  (fixtures)
