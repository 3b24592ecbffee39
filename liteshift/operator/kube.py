"""The only module of the operator that talks to the Kubernetes API (besides kopf itself).

Every call goes through `Kube._call`, which refuses any (group, resource, verb) missing from
`PERMISSIONS`: that table is therefore complete by construction, and the Helm chart's RBAC is
derived from it plus `KOPF_PERMISSIONS` (what kopf needs for watching, progress and Events).

Writes use JSON merge patches: the desired manifest is a subset of the live object, lists are
replaced whole, and a re-run that changes nothing sends nothing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal
from urllib.parse import quote

import kubernetes

from liteshift.errors import LiteshiftError
from liteshift.operator.model import BACKUP_PLURAL, GROUP, PLURAL

Manifest = dict[str, Any]
Outcome = Literal["created", "patched", "unchanged"]


@dataclass(frozen=True)
class ApiResource:
    group: str
    version: str
    plural: str

    def path(self, namespace: str, name: str | None = None) -> str:
        base = f"/api/{self.version}" if not self.group else f"/apis/{self.group}/{self.version}"
        path = f"{base}/namespaces/{quote(namespace, safe='')}/{self.plural}"
        return f"{path}/{quote(name, safe='')}" if name else path


RESOURCES: dict[str, ApiResource] = {
    "StatefulSet": ApiResource("apps", "v1", "statefulsets"),
    "Service": ApiResource("", "v1", "services"),
    "Secret": ApiResource("", "v1", "secrets"),
    "PersistentVolumeClaim": ApiResource("", "v1", "persistentvolumeclaims"),
}

#: (API group, resource, verbs) this module uses. Namespaced, in the Datastore's namespace.
PERMISSIONS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("apps", "statefulsets", ("get", "create", "patch")),
    ("", "services", ("get", "create", "patch")),
    ("", "secrets", ("get", "create", "patch", "delete")),
    ("", "persistentvolumeclaims", ("list", "delete")),
)

#: (API group, resource, verbs) kopf itself uses for the handlers in liteshift.operator.handlers.
KOPF_PERMISSIONS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    (GROUP, PLURAL, ("get", "list", "watch", "patch")),
    (GROUP, f"{PLURAL}/status", ("get", "patch")),
    (GROUP, BACKUP_PLURAL, ("get", "list", "watch", "patch")),
    (GROUP, f"{BACKUP_PLURAL}/status", ("get", "patch")),
    ("", "events", ("create",)),
    ("apiextensions.k8s.io", "customresourcedefinitions", ("list", "watch")),
    ("", "namespaces", ("list", "watch")),
)

# Fields the API server refuses to change on update; a patch leaves them out.
IMMUTABLE_FIELDS: dict[str, tuple[tuple[str, ...], ...]] = {
    "StatefulSet": (
        ("spec", "selector"),
        ("spec", "serviceName"),
        ("spec", "volumeClaimTemplates"),
        ("spec", "podManagementPolicy"),
    ),
}

_ALLOWED = {(group, resource, verb) for group, resource, verbs in PERMISSIONS for verb in verbs}
_VERB_METHOD = {"get": "GET", "list": "GET", "create": "POST", "patch": "PATCH", "delete": "DELETE"}


class KubeError(LiteshiftError):
    """The API server refused a request."""

    code = "kubernetes_error"

    def __init__(self, status: int, reason: str, message: str) -> None:
        self.status = status
        self.reason = reason
        super().__init__(f"Kubernetes API {status} {reason}: {message}")


class KubeConfigError(LiteshiftError):
    """Neither an in-cluster service account nor a usable kubeconfig was found."""

    code = "kubernetes_config"


class Kube:
    """A thin client over `kubernetes.client.ApiClient` speaking plain dicts."""

    def __init__(self, api: kubernetes.client.ApiClient, timeout: float = 30.0) -> None:
        self._api = api
        self._timeout = timeout

    @classmethod
    def from_environment(cls) -> Kube:
        """In-cluster service account when running in a pod, else the local kubeconfig."""
        configuration = kubernetes.client.Configuration()
        try:
            kubernetes.config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        except kubernetes.config.ConfigException:
            try:
                kubernetes.config.load_kube_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
            except (kubernetes.config.ConfigException, OSError) as exc:
                raise KubeConfigError(
                    "no Kubernetes credentials: not in a pod and no usable kubeconfig"
                    f" ({exc}); set KUBECONFIG or run inside the cluster"
                ) from None
        return cls(kubernetes.client.ApiClient(configuration))

    @classmethod
    def from_url(cls, url: str) -> Kube:
        """A client for an unauthenticated API server at `url` (an emulator, a proxy)."""
        configuration = kubernetes.client.Configuration(host=url)
        return cls(kubernetes.client.ApiClient(configuration))

    def close(self) -> None:
        self._api.close()  # type: ignore[no-untyped-call]

    def _call(
        self,
        verb: str,
        kind: str,
        namespace: str,
        name: str | None = None,
        *,
        body: Any = None,
        query: list[tuple[str, str]] | None = None,
    ) -> Any:
        resource = RESOURCES[kind]
        if (resource.group, resource.plural, verb) not in _ALLOWED:
            raise AssertionError(f"{verb} {resource.plural} is missing from kube.PERMISSIONS")
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = (
                "application/merge-patch+json" if verb == "patch" else "application/json"
            )
        method, url, header_params, serialized, _ = self._api.param_serialize(
            method=_VERB_METHOD[verb],
            resource_path=resource.path(namespace, name),
            query_params=query,
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        response = self._api.call_api(
            method, url, header_params=header_params, body=serialized,
            _request_timeout=self._timeout,
        )  # fmt: skip
        response.read()  # type: ignore[no-untyped-call]
        text = response.data.decode() if response.data else ""
        if response.status >= 400:
            try:
                detail = json.loads(text)
                raise KubeError(response.status, str(detail.get("reason", "")),
                                str(detail.get("message", text)))  # fmt: skip
            except ValueError:
                raise KubeError(response.status, response.reason or "", text) from None
        return json.loads(text) if text else None

    def get(self, kind: str, namespace: str, name: str) -> Manifest | None:
        """The live object, or None when it does not exist."""
        try:
            result: Manifest = self._call("get", kind, namespace, name)
        except KubeError as exc:
            if exc.status == 404:
                return None
            raise
        return result

    def create(self, manifest: Mapping[str, Any]) -> Manifest:
        """Create; raises KubeError(409) when it exists already."""
        meta = manifest["metadata"]
        result: Manifest = self._call("create", manifest["kind"], meta["namespace"], body=manifest)
        return result

    def patch(self, kind: str, namespace: str, name: str, body: Mapping[str, Any]) -> Manifest:
        """JSON merge patch (None deletes a key, lists are replaced whole)."""
        result: Manifest = self._call("patch", kind, namespace, name, body=body)
        return result

    def delete(self, kind: str, namespace: str, name: str) -> bool:
        """Delete in the background; False when it was already gone."""
        try:
            self._call("delete", kind, namespace, name, body={"propagationPolicy": "Background"})
        except KubeError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def list(self, kind: str, namespace: str, labels: Mapping[str, str]) -> list[Manifest]:
        """Objects of `kind` carrying all `labels` (checked here too: selectors are a filter
        the server may not apply, e.g. an emulator)."""
        selector = ",".join(f"{key}={value}" for key, value in sorted(labels.items()))
        result = self._call("list", kind, namespace, query=[("labelSelector", selector)])
        items: list[Manifest] = result.get("items") or []
        return [
            item
            for item in items
            if all(
                (item.get("metadata", {}).get("labels") or {}).get(key) == value
                for key, value in labels.items()
            )
        ]

    def apply(self, manifest: Mapping[str, Any]) -> Outcome:
        """Create-or-patch: create; on 409 patch what differs; re-runs change nothing."""
        kind = manifest["kind"]
        namespace = manifest["metadata"]["namespace"]
        name = manifest["metadata"]["name"]
        try:
            self.create(manifest)
        except KubeError as exc:
            if exc.status != 409:
                raise
        else:
            return "created"
        live = self.get(kind, namespace, name)
        if live is None:  # deleted between the two calls; the next reconcile creates it
            self.create(manifest)
            return "created"
        desired = mutable_part(manifest)
        if contains(live, desired):
            return "unchanged"
        self.patch(kind, namespace, name, desired)
        return "patched"


def mutable_part(manifest: Mapping[str, Any]) -> Manifest:
    """The manifest without the fields the API server refuses to change."""
    out: Manifest = json.loads(json.dumps(manifest))
    for path in IMMUTABLE_FIELDS.get(str(manifest.get("kind")), ()):
        node: Any = out
        for key in path[:-1]:
            node = node.get(key, {})
        node.pop(path[-1], None)
    return out


def contains(live: Any, desired: Any) -> bool:
    """Whether every field set in `desired` has the same value in `live` (server defaults and
    fields others set are ignored)."""
    if isinstance(desired, Mapping):
        return isinstance(live, Mapping) and all(
            key in live and contains(live[key], value) for key, value in desired.items()
        )
    if isinstance(desired, list):
        return (
            isinstance(live, list)
            and len(live) == len(desired)
            and all(contains(a, b) for a, b in zip(live, desired, strict=True))
        )
    if isinstance(live, str) and isinstance(desired, str) and live != desired:
        # The API server rewrites quantities in canonical form ("0.5" → "500m", "1024Mi" →
        # "1Gi"); the same amount is no drift.
        live_amount, desired_amount = parse_quantity(live), parse_quantity(desired)
        return live_amount is not None and live_amount == desired_amount
    return bool(live == desired)


_QUANTITY = re.compile(
    r"^(?P<number>[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+))"
    r"(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?[0-9]+)?$"
)
_BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}


def parse_quantity(text: str) -> Decimal | None:
    """The amount a Kubernetes quantity stands for, or None when `text` is not one."""
    match = _QUANTITY.match(text)
    if match is None:
        return None
    number = Decimal(match["number"])
    suffix = match["suffix"] or ""
    if suffix in _BINARY:
        return number * (Decimal(1024) ** _BINARY[suffix])
    if suffix in _DECIMAL:
        return number.scaleb(_DECIMAL[suffix])
    if suffix:
        return number.scaleb(int(suffix[1:]))
    return number
