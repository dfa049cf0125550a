"""The scale subresource: an object's ``autoscaling/v1 Scale`` view, and writes to it."""

from __future__ import annotations

import copy
from typing import Any

from .. import errors, fielderrors, jsonpath
from ..fielderrors import FieldError
from ..registry import ResourceType
from .base import ApiBase
from .request import ApiRequest, _Result


class ScaleMixin(ApiBase):
    """Reading and writing ``/scale``."""

    def _scale_object(self, rtype: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        """``autoscaling/v1 Scale`` of an object (registry/apps/deployment scaleFromDeployment)."""
        scale = rtype.scale
        assert scale is not None  # routed here only for resources with a scale subresource
        meta = obj["metadata"]
        spec_replicas = jsonpath.first(obj, scale.spec_replicas_path)[1]
        status_replicas = jsonpath.first(obj, scale.status_replicas_path)[1]
        selector = ""
        if scale.label_selector_path:
            raw = jsonpath.first(obj, scale.label_selector_path)[1]
            if scale.selector_is_label_selector and isinstance(raw, dict):
                selector = _label_selector_string(raw)
            elif isinstance(raw, dict):  # replicationcontrollers: a plain label map
                selector = ",".join(f"{k}={v}" for k, v in sorted(raw.items()))
            elif isinstance(raw, str):
                selector = raw
        status: dict[str, Any] = {"replicas": status_replicas or 0}
        if selector:
            status["selector"] = selector
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion",
                                                "creationTimestamp") if k in meta},
            "spec": {"replicas": 1 if spec_replicas is None and not rtype.is_custom
                     else spec_replicas or 0},
            "status": status,
        }

    def _write_scale(self, req: ApiRequest, rtype: ResourceType, version: str,
                     existing: dict[str, Any], scale: Any) -> _Result:
        if not isinstance(scale, dict):
            raise errors.bad_request("the Scale provided is not an object")
        replicas = (scale.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise errors.invalid("autoscaling", "Scale", existing["metadata"]["name"], [
                FieldError(fielderrors.INVALID, "spec.replicas", replicas,
                           "must be greater than or equal to 0")])
        rv = (scale.get("metadata") or {}).get("resourceVersion")
        if rv and rv != existing["metadata"]["resourceVersion"]:
            raise errors.conflict(rtype.group, rtype.plural, existing["metadata"]["name"],
                                  errors.STALE)
        assert rtype.scale is not None
        path = [p for p in rtype.scale.spec_replicas_path.split(".") if p]
        updated = copy.deepcopy(self.present(rtype, version, existing))
        node = updated
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = replicas
        incoming = self._incoming(rtype, version, updated)
        return self._commit_update(req, rtype, version, existing, incoming, "")


def _label_selector_string(selector: dict[str, Any]) -> str:
    """``metav1.LabelSelectorAsSelector(...).String()``."""
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In":
            parts.append(f"{key} in ({','.join(sorted(values))})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({','.join(sorted(values))})")
        elif op == "Exists":
            parts.append(str(key))
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(sorted(parts))
