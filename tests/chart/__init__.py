"""Tests of the Helm chart, its RBAC, the container image file, GitOps files and the kind script."""
