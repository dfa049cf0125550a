"""The example package's worker image and pool (issue 11 item 3): the Containerfile builds
``FROM`` the Conveyor image named by an ARG, installs the package without root at run time
and compiles bytecode at build; the WorkerPool is valid for its CRD and names that image
with a pull secret. No container engine exists here, so the file is checked, not built."""

from __future__ import annotations

import re
from pathlib import Path

from conveyor_operator.pools.deployment import Connection, worker_deployment
from conveyor_operator.resources import WorkerPoolResource
from tests.support import containerfile
from tests.support.manifests import load_all, schema_errors

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "tasktypes"


def instructions() -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` of example."""
    return containerfile.instructions(EXAMPLE / "Containerfile")


def test_containerfile_builds_on_the_conveyor_image_and_ends_unprivileged() -> None:
    steps = instructions()
    assert steps[0] == ("ARG", "CONVEYOR_IMAGE=ghcr.io/conveyor-dev/conveyor:0.1.0")
    assert steps[1] == ("FROM", "${CONVEYOR_IMAGE}")
    assert [a for i, a in steps if i == "FROM"] == ["${CONVEYOR_IMAGE}"]  # one stage
    assert steps[-1] == ("USER", "10001:10001")  # the base image's numeric user
    run = " ".join(a for i, a in steps if i == "RUN")
    assert re.search(r"pip install --no-cache-dir --no-deps \.", run)
    assert "python -m compileall -q /opt/conveyor" in run  # read-only root at run time
    assert not any(i in ("ADD", "ENTRYPOINT", "CMD") for i, _ in steps)


def test_copied_files_exist_in_the_package() -> None:
    for instruction, args in instructions():
        if instruction == "COPY":
            for source in args.split()[:-1]:
                assert (EXAMPLE / source).exists(), source


def test_example_pool_names_its_image_and_pull_secret() -> None:
    (doc,) = load_all(EXAMPLE / "workerpool.yaml")
    assert schema_errors("WorkerPool", doc) == []
    pool = WorkerPoolResource.model_validate(doc)
    deployment = worker_deployment(
        pool=pool.metadata.name, uid="u", spec=pool.spec, namespace="conveyor",
        image="ghcr.io/conveyor-dev/conveyor:0.1.0", replicas=1,
        connection=Connection(key_prefix="cv", secret="conveyor-connection"))
    pod = deployment["spec"]["template"]["spec"]
    assert pod["containers"][0]["image"] == \
        "registry.example/acme/conveyor-example-tasks:0.1.0"
    assert pod["imagePullSecrets"] == [{"name": "acme-registry"}]
    assert pod["automountServiceAccountToken"] is False
