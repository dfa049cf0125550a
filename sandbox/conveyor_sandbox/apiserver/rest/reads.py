"""Reads: get, list (label and field selectors, paging, tables, metadata-only lists) and
watch, and how stored objects are presented in the requested version."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import aiohttp.web

from .. import errors, events, jsonpath, selectors, tables, watch
from ..registry import ResourceType
from ..requestinfo import parse_bool
from .base import ApiBase
from .request import ApiRequest, json_response


class ReadsMixin(ApiBase):
    """Representation, get, list and watch."""

    def present(self, rtype: ResourceType, version: str, obj: dict[str, Any]) -> dict[str, Any]:
        """A stored object as served in ``version`` (conversion strategy None: apiVersion)."""
        if events.is_events_api(rtype.group, rtype.plural):
            return events.from_core(obj)
        if obj.get("apiVersion") == rtype.api_version(version):
            return obj
        shown = dict(obj)
        shown["apiVersion"] = rtype.api_version(version)
        return shown

    def _respond_object(self, req: ApiRequest, rtype: ResourceType, version: str,
                        obj: dict[str, Any]) -> aiohttp.web.Response:
        if req.info.subresource == "scale":
            return json_response(self._scale_object(rtype, obj))
        shown = self.present(rtype, version, obj)
        table_version = tables.wants(req.headers.get("Accept"), "Table")
        if table_version:
            return json_response(tables.to_table(
                rtype, version, [shown], include_object=req.query.get("includeObject"),
                table_version=table_version,
                list_meta={"resourceVersion": shown["metadata"].get("resourceVersion", "")},
            ))
        meta_version = tables.wants(req.headers.get("Accept"), "PartialObjectMetadata")
        if meta_version:
            return json_response(tables.partial_metadata(shown, meta_version))
        return json_response(shown)

    def _field_set(self, rtype: ResourceType, version: str, obj: dict[str, Any]) -> dict[str, str]:
        meta = obj.get("metadata") or {}
        fields = {"metadata.name": meta.get("name", ""),
                  "metadata.namespace": meta.get("namespace", "")}
        for label, path in rtype.field_labels.items():
            fields[label] = selectors.field_string(selectors.get_path(obj, path))
        info = rtype.versions.get(version)
        for label in info.selectable_fields if info else []:
            fields[label] = selectors.field_string(jsonpath.first(obj, "." + label)[1])
        return fields

    def _matcher(self, req: ApiRequest, rtype: ResourceType, version: str, namespace: str,
                 name: str = "") -> Callable[[dict[str, Any]], bool]:
        labels = selectors.parse_label_selector(req.query.get("labelSelector"))
        fields = selectors.parse_field_selector(
            req.query.get("fieldSelector"), lambda label: rtype.supports_field(version, label)
        )

        def matches(obj: dict[str, Any]) -> bool:
            meta = obj.get("metadata") or {}
            if namespace and meta.get("namespace", "") != namespace:
                return False
            if name and meta.get("name") != name:
                return False
            return labels.matches(meta.get("labels")) and fields.matches(
                self._field_set(rtype, version, obj))

        return matches

    def _get(self, rtype: ResourceType, namespace: str, name: str) -> dict[str, Any]:
        obj = self.store.get(rtype.storage_key, namespace, name)
        if obj is None:
            raise errors.not_found(rtype.group, rtype.plural, name)
        return obj

    def _list(self, req: ApiRequest, rtype: ResourceType, version: str,
              namespace: str) -> aiohttp.web.Response:
        matches = self._matcher(req, rtype, version, namespace)
        items = [o for o in self.store.list(rtype.storage_key, namespace or None) if matches(o)]
        list_meta: dict[str, Any] = {"resourceVersion": str(self.store.rv)}
        start = _decode_continue(req.query.get("continue"))
        if start is not None:
            items = [o for o in items if _object_key(o) > start]
        limit = _int_param(req.query.get("limit"))
        if limit and len(items) > limit:
            list_meta["continue"] = _encode_continue(_object_key(items[limit - 1]))
            list_meta["remainingItemCount"] = len(items) - limit
            items = items[:limit]
        shown = [self.present(rtype, version, o) for o in items]
        table_version = tables.wants(req.headers.get("Accept"), "Table")
        if table_version:
            return json_response(tables.to_table(
                rtype, version, shown, include_object=req.query.get("includeObject"),
                table_version=table_version, list_meta=list_meta,
            ))
        meta_version = tables.wants(req.headers.get("Accept"), "PartialObjectMetadataList")
        if meta_version:
            return json_response({
                "kind": "PartialObjectMetadataList",
                "apiVersion": f"meta.k8s.io/{meta_version}",
                "metadata": list_meta,
                "items": [tables.partial_metadata(o, meta_version) for o in shown],
            })
        return json_response({
            "apiVersion": rtype.api_version(version),
            "kind": rtype.list_kind,
            "metadata": list_meta,
            "items": shown,
        })

    async def _watch(self, req: ApiRequest, rtype: ResourceType, version: str, namespace: str,
                     name: str) -> aiohttp.web.StreamResponse:
        matches = self._matcher(req, rtype, version, namespace, name)
        table_version = tables.wants(req.headers.get("Accept"), "Table")
        include = req.query.get("includeObject")

        def render(obj: dict[str, Any]) -> dict[str, Any]:
            shown = self.present(rtype, version, obj)
            if table_version:
                return tables.to_table(
                    rtype, version, [shown], include_object=include, table_version=table_version,
                    list_meta={"resourceVersion": shown["metadata"].get("resourceVersion", "")},
                )
            return shown

        def bookmark(rv: int) -> dict[str, Any]:
            return {"kind": rtype.kind, "apiVersion": rtype.api_version(version),
                    "metadata": {"resourceVersion": str(rv)}}

        timeout = _int_param(req.query.get("timeoutSeconds"))
        watch_list = parse_bool(req.query.get("sendInitialEvents"))
        spec = watch.WatchSpec(
            storage=rtype.storage_key,
            since_rv=None if watch_list else watch.parse_since(req.query.get("resourceVersion")),
            matches=matches,
            render=render,
            initial=lambda: self.store.list(rtype.storage_key, namespace or None),
            timeout=float(timeout) if timeout else watch.DEFAULT_TIMEOUT,
            bookmarks=parse_bool(req.query.get("allowWatchBookmarks")) and not table_version,
            bookmark_object=bookmark,
            bookmark_interval=self.bookmark_interval,
            initial_events_end=watch_list,
        )
        return await watch.serve(req.raw, self.store, spec, req.on_start)


def _object_key(obj: dict[str, Any]) -> tuple[str, str]:
    meta = obj["metadata"]
    return (meta.get("namespace", ""), meta["name"])


def _encode_continue(key: tuple[str, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(key)).encode()).decode()


def _decode_continue(token: str | None) -> tuple[str, str] | None:
    if not token:
        return None
    try:
        namespace, name = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, TypeError) as exc:
        raise errors.bad_request(f"continue key is not valid: {exc}") from exc
    return (str(namespace), str(name))


def _int_param(value: str | None) -> int:
    if not value:
        return 0
    try:
        return max(int(value), 0)
    except ValueError:
        raise errors.bad_request(f"invalid integer parameter: {value!r}") from None
