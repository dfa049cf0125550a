"""The operator's own Kubernetes API calls (status patches and Events), via kubernetes_asyncio.

kopf handles watching and handler bookkeeping; status written from the engine's change
stream happens outside kopf handlers, so it goes through this small client.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.exceptions import ApiException

from .resources import API_VERSION, GROUP, VERSION
from .status import PhaseEvent, rfc3339, status_json_patch

log = logging.getLogger(__name__)

#: Seconds any one API call may take; a hung connection must not stall a control loop.
TIMEOUT = 10


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """Coordinates of one custom object (``namespace`` empty for cluster-scoped ones)."""

    namespace: str
    name: str
    uid: str
    kind: str = "Execution"
    plural: str = "executions"
    #: Where Events about a cluster-scoped object go (default ``default``).
    event_namespace: str | None = None
    #: The object's apiVersion in Events (default: this operator's ``conveyor.dev`` one).
    api_version: str = API_VERSION


class Kube:
    """Status patches and Events. Create with :meth:`connect`, end with :meth:`close`."""

    def __init__(self, api: client.ApiClient) -> None:
        self.api = api
        self._api = api
        self._custom = client.CustomObjectsApi(api)
        self._core = client.CoreV1Api(api)
        self._instance = socket.gethostname()

    @classmethod
    async def connect(cls, kubeconfig: str | None = None) -> Kube:
        """In-cluster credentials when running in a pod, else ``kubeconfig`` / ``$KUBECONFIG``."""
        if kubeconfig is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
            config.load_incluster_config()
            return cls(client.ApiClient())
        configuration = client.Configuration()
        await config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
        return cls(client.ApiClient(configuration))

    async def close(self) -> None:
        """Close the HTTP session."""
        await self._api.close()

    async def get(self, namespace: str, plural: str, name: str) -> dict[str, Any] | None:
        """A ``conveyor.dev`` object as the API server has it now, or None (404)."""
        try:
            return await self._custom.get_namespaced_custom_object(
                GROUP, VERSION, namespace, plural, name, _request_timeout=TIMEOUT)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    async def namespace_annotations(self, name: str) -> dict[str, str] | None:
        """The ``metadata.annotations`` of Namespace ``name`` (``{}`` when it has none), or
        None when it does not exist (404); raises ``ApiException`` otherwise (403 without
        ``get`` on ``namespaces``)."""
        try:
            found = await self._core.read_namespace(name, _request_timeout=TIMEOUT)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return dict(found.metadata.annotations or {})

    async def delete(self, ref: ObjectRef) -> bool:
        """Delete the namespaced object ``ref`` names if it is still that object: the uid is
        a precondition (``DeleteOptions.preconditions``; a mismatch answers 409). Returns
        False when it is gone (404) or replaced (409); raises ``ApiException`` otherwise."""
        try:
            await self._custom.delete_namespaced_custom_object(
                GROUP, VERSION, ref.namespace, ref.plural, ref.name,
                body={"apiVersion": "v1", "kind": "DeleteOptions",
                      "preconditions": {"uid": ref.uid}},
                _request_timeout=TIMEOUT)
            return True
        except ApiException as exc:
            if exc.status in (404, 409):
                return False
            raise

    async def list_objects(self, plural: str, namespace: str | None,
                           label_selector: str | None = None) -> list[dict[str, Any]]:
        """Every ``conveyor.dev`` object of kind ``plural`` (in ``namespace``, or all),
        only those matching ``label_selector`` when given."""
        extra = {"label_selector": label_selector} if label_selector else {}
        if namespace:
            found = await self._custom.list_namespaced_custom_object(
                GROUP, VERSION, namespace, plural, _request_timeout=TIMEOUT, **extra)
        else:
            found = await self._custom.list_cluster_custom_object(
                GROUP, VERSION, plural, _request_timeout=TIMEOUT, **extra)
        return list(found.get("items") or [])

    async def create(self, namespace: str, plural: str,
                     body: dict[str, Any]) -> dict[str, Any] | None:
        """Create the namespaced ``conveyor.dev`` object ``body``; returns it as stored, or
        None when an object of that name exists already (409 AlreadyExists)."""
        try:
            return await self._custom.create_namespaced_custom_object(
                GROUP, VERSION, namespace, plural, body, _request_timeout=TIMEOUT)
        except ApiException as exc:
            if exc.status == 409:
                return None
            raise

    async def patch_spec(self, ref: ObjectRef, spec: dict[str, Any]) -> bool:
        """Set the top-level ``spec`` keys of ``spec`` on the object ``ref`` names: a JSON
        patch that first tests ``metadata.uid``, as status writes do. False when the object
        is gone (404) or replaced or the change refused (422)."""
        ops: list[dict[str, Any]] = [{"op": "test", "path": "/metadata/uid", "value": ref.uid}]
        ops += [{"op": "add", "path": "/spec/" + key.replace("~", "~0").replace("/", "~1"),
                 "value": value} for key, value in spec.items()]
        try:
            await self._custom.patch_namespaced_custom_object(
                GROUP, VERSION, ref.namespace, ref.plural, ref.name, ops,
                _content_type="application/json-patch+json", _request_timeout=TIMEOUT)
            return True
        except ApiException as exc:
            if exc.status in (404, 422):
                return False
            raise

    async def patch_status(self, ref: ObjectRef, patch: dict[str, Any],
                           known: dict[str, Any]) -> bool:
        """Apply the status merge patch ``patch`` to the object ``ref`` names, if it is still
        that object (same uid).

        ``known`` is the status the caller last wrote or read (``{}``: none). The write is
        a JSON patch guarded by a ``test`` of ``metadata.uid`` (see
        :func:`~conveyor_operator.status.status_json_patch`). If it does not apply (422),
        either the object was replaced or its status is not what ``known`` says; the
        operator is the only writer of this status, so the second try replaces the whole
        status with ``known`` merged with ``patch``, still guarded by the uid, and a 422
        then can only mean another object. Returns False when the object is gone (404) or
        replaced; raises ``ApiException`` otherwise.
        """
        try:
            await self._patch_status(ref, status_json_patch(ref.uid, patch, set(known) or None))
            return True
        except ApiException as exc:
            if exc.status == 404:
                return False
            if exc.status != 422:
                raise
        whole = {**known, **patch}
        try:
            await self._patch_status(ref, status_json_patch(ref.uid, whole, None))
        except ApiException as exc:
            if exc.status in (404, 422):
                return False
            raise
        return True

    async def _patch_status(self, ref: ObjectRef, ops: list[dict[str, Any]]) -> None:
        if ref.namespace:
            await self._custom.patch_namespaced_custom_object_status(
                GROUP, VERSION, ref.namespace, ref.plural, ref.name, ops,
                _content_type="application/json-patch+json", _request_timeout=TIMEOUT,
            )
        else:  # cluster-scoped (WorkerPool)
            await self._custom.patch_cluster_custom_object_status(
                GROUP, VERSION, ref.plural, ref.name, ops,
                _content_type="application/json-patch+json", _request_timeout=TIMEOUT,
            )

    async def post_event(self, ref: ObjectRef, event: PhaseEvent) -> bool:
        """Create a core/v1 Event about ``ref`` (what ``kubectl describe`` lists), best effort.

        Events about cluster-scoped objects go to ``ref.event_namespace`` (a pool's
        Deployment namespace, where the operator may write Events) or ``default``.
        Never raises for an API or connection failure: an Event is a report, and a refused
        one (403 in a namespace being terminated, a 5xx, a timeout) must not fail or retry
        the work it reports on, nor hold a finalizer. Returns False when it was not posted.
        """
        try:
            await self._create_event(ref, event)
            return True
        except ApiException as exc:
            level = logging.INFO if exc.status == 403 else logging.WARNING
            log.log(level, "event %s about %s %s/%s not posted: %s %s", event.reason,
                    ref.kind, ref.namespace, ref.name, exc.status, exc.reason)
        except (TimeoutError, aiohttp.ClientError) as exc:
            log.warning("event %s about %s %s/%s not posted: %s", event.reason, ref.kind,
                        ref.namespace, ref.name, exc or type(exc).__name__)
        return False

    async def _create_event(self, ref: ObjectRef, event: PhaseEvent) -> None:
        now = rfc3339(datetime.now(UTC))
        namespace = ref.namespace or ref.event_namespace or "default"
        involved = {"apiVersion": ref.api_version, "kind": ref.kind, "name": ref.name,
                    "uid": ref.uid}
        if ref.namespace:
            involved["namespace"] = ref.namespace
        await self._core.create_namespaced_event(namespace, {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{ref.name}.", "namespace": namespace},
            "involvedObject": involved,
            "type": event.type,
            "reason": event.reason,
            "message": event.message[:1024],
            "source": {"component": "conveyor-operator"},
            "reportingComponent": "conveyor.dev/operator",
            "reportingInstance": self._instance,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }, _request_timeout=TIMEOUT)
