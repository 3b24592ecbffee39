"""Running kopf for real, in-process, against kmock's Kubernetes emulator on loopback.

The emulator and the operator share one event loop in a background thread; tests drive the
"cluster" from the main thread with the sync `kubernetes` client, like `kubectl` would.
The emulator has no controllers: no garbage collection, no StatefulSet controller, so tests
play those parts themselves where they matter (PVCs, readyReplicas).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, ClassVar

import aiohttp
import attrs
import kmock
import kopf
import kubernetes

import liteshift.operator.handlers  # noqa: F401 - registers the handlers in kopf's default registry
from liteshift.operator.handlers.runtime import MEMO_KEY, Runtime
from liteshift.operator.kube import Kube

NAMESPACE = "apps"


@attrs.define(kw_only=True)
class Emulator(kmock.KubernetesEmulator):  # type: ignore[misc]
    """kmock's emulator plus the API-server duties kopf relies on.

    - `generateName`: kopf posts Events with it only; without a name the emulator would store
      the first Event and answer 409 to every later one.
    - `uid`, `resourceVersion` and `generation`: kopf tells fresh events from stale ones by
      resourceVersion and tests it in its JSON patches (a mismatch is a 422, as on a real
      server); without bumps it re-ran creation handlers on stale events.
    """

    #: (HTTP method, plural) pairs answered 403 Forbidden, as a too narrow RBAC would.
    refused: set[tuple[str, str]] = attrs.field(factory=set)

    # Shared by all instances: versions only need to be unique and growing.
    _clock: ClassVar[dict[str, int]] = {"version": 1}

    def _next_version(self) -> str:
        self._clock["version"] += 1
        return str(self._clock["version"])

    async def _serve_list(self, request: Any) -> Any:
        result = await super()._serve_list(request)
        result["metadata"]["resourceVersion"] = str(self._clock["version"])
        return result

    async def _serve_watch(self, request: Any) -> Any:
        # A real watch from a listed resourceVersion sends only newer changes; kmock replays
        # every object, which kopf would take for fresh events of stale state.
        since = request.params.get("resourceVersion", "")
        since_version = int(since) if since.isdigit() else 0
        async for event in super()._serve_watch(request):
            if isinstance(event, dict) and event.get("type") in ("ADDED", "MODIFIED"):
                version = event.get("object", {}).get("metadata", {}).get("resourceVersion", "")
                if version.isdigit() and int(version) <= since_version:
                    continue
            yield event

    async def _handle(self, request: Any) -> Any:
        if (
            request.resource is not None
            and (request.method, request.resource.plural) in self.refused
        ):
            raise kmock.KubernetesError(
                status=403, reason="Forbidden", message=f"{request.method} is not allowed"
            )
        data = request.data
        if request.resource is not None and request.method == "POST" and isinstance(data, dict):
            meta = data.setdefault("metadata", {})
            if meta.get("generateName") and not meta.get("name"):
                meta["name"] = f"{meta['generateName']}{uuid.uuid4().hex[:8]}"
            meta.setdefault("uid", str(uuid.uuid4()))
            meta.setdefault("generation", 1)
            meta["resourceVersion"] = self._next_version()
        elif request.resource is not None and request.method == "PATCH" and request.name:
            live = self._live(request)
            if live is not None:
                self._versioned_patch(request, live)
        elif request.resource is not None and request.method == "DELETE" and request.name:
            key = (request.resource, request.namespace, request.name)
            if self._live(request) is not None:
                self.objects[key].patch({"metadata": {"resourceVersion": self._next_version()}})
        return await super()._handle(request)

    def _live(self, request: Any) -> dict[str, Any] | None:
        key = (request.resource, request.namespace, request.name)
        if key not in self.objects or self.objects[key].deleted:
            return None
        return dict(self.objects[key].raw)

    def _versioned_patch(self, request: Any, live: dict[str, Any]) -> None:
        meta = live.get("metadata") or {}
        version = self._next_version()
        generation = int(meta.get("generation") or 1)
        status_only = request.url.path.endswith("/status")
        if isinstance(request.data, list):  # JSON patch
            for op in request.data:
                if (
                    op.get("op") == "test"
                    and op.get("path") == "/metadata/resourceVersion"
                    and op.get("value") != meta.get("resourceVersion")
                ):
                    raise kmock.KubernetesError(
                        status=422, reason="Invalid", message="resourceVersion changed"
                    )
            touches_spec = any(op.get("path", "").startswith("/spec") for op in request.data)
            request.data.append(
                {"op": "add", "path": "/metadata/resourceVersion", "value": version}
            )
            if touches_spec and not status_only:
                request.data.append(
                    {"op": "add", "path": "/metadata/generation", "value": generation + 1}
                )
        elif isinstance(request.data, dict):  # merge patch
            patch_meta = request.data.setdefault("metadata", {})
            patch_meta["resourceVersion"] = version
            if "spec" in request.data and not status_only:
                patch_meta["generation"] = generation + 1


# Everything the operator (and kopf) touches must be declared, or kopf never starts watching.
RESOURCES: dict[str, dict[str, Any]] = {
    "liteshift.io/v1alpha1/datastores": {
        "kind": "Datastore",
        "namespaced": True,
        "subresources": {"status"},
        "verbs": {"get", "list", "watch", "create", "patch", "delete"},
    },
    "apiextensions.k8s.io/v1/customresourcedefinitions": {
        "kind": "CustomResourceDefinition",
        "namespaced": False,
        "verbs": {"list", "watch"},
    },
    "v1/namespaces": {"kind": "Namespace", "namespaced": False, "verbs": {"list", "watch"}},
    "v1/events": {"kind": "Event", "namespaced": True, "verbs": {"create", "list"}},
    "apps/v1/statefulsets": {"kind": "StatefulSet", "namespaced": True},
    "v1/services": {"kind": "Service", "namespaced": True},
    "v1/secrets": {"kind": "Secret", "namespaced": True},
    "v1/persistentvolumeclaims": {"kind": "PersistentVolumeClaim", "namespaced": True},
}

PATHS = {
    "Datastore": "/apis/liteshift.io/v1alpha1/namespaces/{ns}/datastores",
    "StatefulSet": "/apis/apps/v1/namespaces/{ns}/statefulsets",
    "Service": "/api/v1/namespaces/{ns}/services",
    "Secret": "/api/v1/namespaces/{ns}/secrets",
    "PersistentVolumeClaim": "/api/v1/namespaces/{ns}/persistentvolumeclaims",
    "Event": "/api/v1/namespaces/{ns}/events",
}


class Cluster:
    """The test's view of the emulated cluster: raw JSON over the sync `kubernetes` client."""

    #: Marks the test's own requests, to tell them from the operator's.
    USER_AGENT = "liteshift-tests"

    def __init__(self, url: str, emulator: Emulator) -> None:
        self.url = url
        self.emulator = emulator
        self.api = kubernetes.client.ApiClient(kubernetes.client.Configuration(host=url))
        self.api.user_agent = self.USER_AGENT

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = (
                "application/merge-patch+json" if method == "PATCH" else "application/json"
            )
        _, url, headers, body, _ = self.api.param_serialize(
            method=method, resource_path=path, header_params=headers, body=body
        )
        response = self.api.call_api(method, url, header_params=headers, body=body)
        response.read()
        return response.status, json.loads(response.data) if response.data else None

    def _path(self, kind: str, name: str | None = None, ns: str = NAMESPACE) -> str:
        base = PATHS[kind].format(ns=ns)
        return f"{base}/{name}" if name else base

    def create(self, kind: str, obj: dict[str, Any], ns: str = NAMESPACE) -> dict[str, Any]:
        status, body = self.request("POST", self._path(kind, ns=ns), obj)
        assert status < 300, body
        return dict(body)

    def get(self, kind: str, name: str, ns: str = NAMESPACE) -> dict[str, Any] | None:
        status, body = self.request("GET", self._path(kind, name, ns))
        return dict(body) if status == 200 else None

    def list(self, kind: str, ns: str = NAMESPACE) -> list[dict[str, Any]]:
        status, body = self.request("GET", self._path(kind, ns=ns))
        assert status == 200, body
        return list(body["items"])

    def patch(self, kind: str, name: str, body: dict[str, Any], ns: str = NAMESPACE) -> None:
        status, result = self.request("PATCH", self._path(kind, name, ns), body)
        assert status < 300, result

    def delete(self, kind: str, name: str, ns: str = NAMESPACE) -> None:
        status, result = self.request("DELETE", self._path(kind, name, ns))
        assert status < 300, result

    def close(self) -> None:
        self.api.close()


def wait_for(
    predicate: Callable[[], Any], timeout: float = 20.0, message: str = "condition"
) -> Any:
    """Poll until `predicate()` is truthy; return its value or fail with `message`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")


def settings_for_tests() -> kopf.OperatorSettings:
    settings = kopf.OperatorSettings()
    settings.watching.reconnect_backoff = 0.1
    settings.watching.server_timeout = 30
    settings.networking.request_timeout = 10
    settings.networking.connect_timeout = 5
    settings.queueing.idle_timeout = 0.1
    settings.queueing.exit_timeout = 2
    return settings


def _in_thread(name: str, main: Callable[[threading.Event, threading.Event], Awaitable[None]]
               ) -> contextlib.AbstractContextManager[None]:  # fmt: skip
    """Run `main(ready, stop)` in its own event loop and thread until the block exits."""

    @contextlib.contextmanager
    def manager() -> Iterator[None]:
        ready = threading.Event()
        stop = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            try:
                asyncio.run(main(ready, stop))
            except BaseException as exc:  # surfaced in the test thread below
                errors.append(exc)
                ready.set()

        thread = threading.Thread(target=run, name=name, daemon=True)
        thread.start()
        if not ready.wait(30) or errors:
            stop.set()
            thread.join(10)
            raise AssertionError(f"{name} did not become ready: {errors!r}")
        try:
            yield
        finally:
            stop.set()
            thread.join(30)
            assert not thread.is_alive(), f"{name} did not stop within 30 s"
        if errors:
            raise errors[0]

    return manager()


@contextlib.contextmanager
def running_emulator() -> Iterator[Cluster]:
    """kmock's emulator on a loopback port, with every resource the operator uses declared."""
    box: dict[str, Any] = {}

    async def main(ready: threading.Event, stop: threading.Event) -> None:
        async with Emulator() as emulator, kmock.Server(emulator) as server:
            for resource, info in RESOURCES.items():
                emulator.resources[resource] = info
            box.update(url=str(server.url).rstrip("/"), emulator=emulator)
            ready.set()
            while not stop.is_set():
                await asyncio.sleep(0.05)

    with _in_thread("emulator", main):
        cluster = Cluster(box["url"], box["emulator"])
        try:
            yield cluster
        finally:
            cluster.close()


@contextlib.asynccontextmanager
async def operator_connection(url: str) -> AsyncIterator[kopf.AiohttpSession]:
    """kopf's login to the emulator at `url` over an HTTP session the test owns.

    Closed here, in the operator's loop once kopf has returned: a session kopf makes for
    itself was, after some shutdowns, left unclosed and garbage-collected during a later
    test (a ResourceWarning, an error under `filterwarnings = error`)."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        yield kopf.AiohttpSession(server=url, default_namespace=NAMESPACE, aiohttp_session=session)


def running_operator(
    url: str, memo: dict[str, Any] | None = None, *, retry_delay: float = 0.5
) -> contextlib.AbstractContextManager[None]:
    """kopf with the liteshift handlers, in-process, logged in to the emulator at `url`;
    `memo` adds to the memo (a handler group's settings)."""

    async def main(ready: threading.Event, stop: threading.Event) -> None:
        async with operator_connection(url) as connection:
            runtime = Runtime(
                kube=Kube.from_url(url),
                drift_interval=1.0,
                retry_delay=retry_delay,
                connection=connection,
            )
            await kopf.operator(
                registry=kopf.get_default_registry(),
                settings=settings_for_tests(),
                standalone=True,
                clusterwide=True,
                memo=kopf.Memo({MEMO_KEY: runtime, **(memo or {})}),
                stop_flag=stop,
                ready_flag=ready,
            )

    return _in_thread("kopf", main)
