"""Resource requests: get, list, watch, create, update, patch, delete, deletecollection.

The behaviours are the API server's generic registry (k8s.io/apiserver/pkg/registry/generic/
registry/store.go) with the strategies of the resources we care about:

- Create: 201 with the stamped object (:mod:`.stamping`); 409 AlreadyExists; ``generateName``;
  404 when the namespace does not exist and 403 when it is terminating (NamespaceLifecycle);
  status is dropped for resources with a status subresource.
- Update (PUT) and patch: optimistic concurrency on ``metadata.resourceVersion`` (409
  Conflict; custom resources refuse unconditional PUTs with 422); with a status subresource,
  main writes keep the old status and ``/status`` writes change nothing but status;
  ``generation`` follows :func:`.stamping.spec_changed`; a write that changes nothing is not
  stored (no new resourceVersion, no event), as etcd3's GuaranteedUpdate skips it.
- Delete: objects with finalizers get ``deletionTimestamp`` (202) and vanish once an update
  removes the last finalizer (watchers see MODIFIED, then DELETED); others vanish at once (200).
  Preconditions (uid, resourceVersion) are honoured. Dependents (``ownerReferences``) are
  garbage-collected in the background style, or orphaned with ``propagationPolicy=Orphan``.
- Custom resources are pruned, defaulted and validated against their CRD (:mod:`.validation`);
  ``fieldValidation`` Strict answers unknown fields with 400, Warn (the default) with a
  ``Warning`` header, Ignore silently.
- Namespaces start Active, go Terminating on delete while their content is deleted, and vanish
  when empty. CRDs register their resource on write and clean up their instances on delete.
- ``dryRun=All`` runs everything but the write.
"""

from .api import ResourceApi
from .kinds import CRDS, NAMESPACES
from .request import ApiRequest, json_response

__all__ = ["CRDS", "NAMESPACES", "ApiRequest", "ResourceApi", "json_response"]
