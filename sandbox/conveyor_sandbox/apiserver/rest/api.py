"""The entry point of resource requests: find the resource, check the verb and subresource,
and dispatch to the read, write, scale and delete handlers."""

from __future__ import annotations

import aiohttp.web

from .. import errors
from .controllers import ControllersMixin
from .create import CreateMixin
from .delete import DeleteMixin
from .kinds import NAMESPACES
from .reads import ReadsMixin
from .request import ApiRequest, json_response
from .scale import ScaleMixin
from .update import UpdateMixin

_SUBRESOURCES = frozenset({"status", "scale", "finalize"})


class ResourceApi(
    ReadsMixin, CreateMixin, UpdateMixin, ScaleMixin, DeleteMixin, ControllersMixin
):
    """Serves resource requests against a :class:`Registry` and a :class:`Store`."""

    async def handle(self, req: ApiRequest) -> aiohttp.web.StreamResponse:
        info = req.info
        rtype = self.registry.lookup(info.group, info.version, info.resource)
        if rtype is None:
            raise errors.resource_not_found()
        namespace = info.namespace
        if rtype.storage_key == NAMESPACES:
            namespace = ""  # /api/v1/namespaces/{name}: the path names the object itself
        elif not rtype.namespaced and namespace:
            raise errors.resource_not_found()
        elif rtype.namespaced and info.name_from_path and not namespace:
            raise errors.resource_not_found()
        # Of the subresources, only status and scale are emulated (no pods/log, exec, ...).
        if info.subresource and (info.subresource not in rtype.subresources
                                 or info.subresource not in _SUBRESOURCES):
            raise errors.resource_not_found()
        allowed = rtype.subresource_verbs.get(info.subresource, []) if info.subresource else (
            rtype.verbs)
        name = info.name if info.name_from_path else ""
        verb = info.verb
        if verb not in allowed and not (verb == "watch" and "watch" in rtype.verbs):
            raise errors.method_not_allowed()
        version = info.version
        match verb:
            case "get":
                return self._respond_object(req, rtype, version, self._get(rtype, namespace, name))
            case "list":
                return self._list(req, rtype, version, namespace)
            case "watch":
                return await self._watch(req, rtype, version, namespace, name)
            case "create":
                if info.subresource or name:
                    raise errors.method_not_allowed()
                if rtype.namespaced and not namespace:
                    raise errors.method_not_allowed()
                result = self._create(req, rtype, version, namespace, req.json())
            case "update":
                result = self._update(req, rtype, version, namespace, name, info.subresource)
            case "patch":
                result = self._patch(req, rtype, version, namespace, name, info.subresource)
            case "delete":
                result = self._delete(req, rtype, namespace, name)
            case "deletecollection":
                return self._delete_collection(req, rtype, version, namespace)
            case _:
                raise errors.method_not_allowed()
        if info.subresource == "scale":
            body = self._scale_object(rtype, result.obj)
        else:
            body = self.present(rtype, version, result.obj)
        return json_response(body, status=result.status, warnings=result.warnings)
