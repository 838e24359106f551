"""Objects listed from a cluster's API server through the official ``kubernetes`` client.

The client (``pip install 'haprotect[k8s]'``) is imported when a cluster is
asked, never when haprotect starts. It reads the kubeconfig: the one named
in the URL, else ``$KUBECONFIG`` or ``~/.kube/config``, with the URL's
context or the current one. Each kind is listed across all namespaces, its
answer kept as the JSON the server sent, so that the dump and the API are
read by the same code. An operator whose resource the server does not know
(404: its CRD is not installed) is passed over; a refusal (401, 403), any
other error and an unreachable server end discovery in one line naming the
resource and the server. Secrets are never asked for.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from haprotect.errors import ComponentError, InputError, RegistryError, UsageError
from haprotect.sources.kubernetes.objects import CNPG, CRUNCHY, ZALANDO

#: (resource, client class, list method), the built-in kinds read
_BUILTIN = (
    ("nodes", "CoreV1Api", "list_node"),
    ("persistentvolumes", "CoreV1Api", "list_persistent_volume"),
    ("storageclasses", "StorageV1Api", "list_storage_class"),
    ("persistentvolumeclaims", "CoreV1Api", "list_persistent_volume_claim_for_all_namespaces"),
    ("pods", "CoreV1Api", "list_pod_for_all_namespaces"),
    ("services", "CoreV1Api", "list_service_for_all_namespaces"),
    ("statefulsets", "AppsV1Api", "list_stateful_set_for_all_namespaces"),
    ("deployments", "AppsV1Api", "list_deployment_for_all_namespaces"),
    ("poddisruptionbudgets", "PolicyV1Api", "list_pod_disruption_budget_for_all_namespaces"),
)
#: (group, version, plural) of the operators' resources read
_CUSTOM = (
    (CNPG, "v1", "clusters"),
    (ZALANDO, "v1", "postgresqls"),
    (CRUNCHY, "v1beta1", "postgresclusters"),
)


@dataclass(frozen=True, slots=True)
class Target:
    """Which kubeconfig and context a ``kubernetes://`` URL names."""

    kubeconfig: str | None
    context: str | None


def parse_target(url: str) -> Target:
    """``kubernetes://[CONTEXT]`` or ``kubernetes:///path/kubeconfig[?context=NAME]``."""
    parts = urlsplit(url)
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = sorted(set(query) - {"context"})
    if unknown or parts.fragment:
        raise UsageError(f"{url}: a kubernetes:// URL takes only ?context=NAME")
    context = query.get("context", [None])[-1] or None
    path = unquote(parts.path)
    if parts.netloc and path not in ("", "/"):
        raise UsageError(
            f"{url}: name a context (kubernetes://CONTEXT) or a kubeconfig "
            "(kubernetes:///path/kubeconfig?context=NAME), not both in the host"
        )
    if parts.netloc:
        return Target(None, unquote(parts.netloc))
    return Target(path if path not in ("", "/") else None, context)


def list_objects(target: Target, timeout: float) -> tuple[list[object], str, str]:
    """Every object read, the context's name (the cluster's) and the server, for messages."""
    client, config = _client_modules()
    configuration = client.Configuration()
    kubeconfig = target.kubeconfig or _default_kubeconfig()
    try:
        contexts, active = config.list_kube_config_contexts(config_file=kubeconfig)
    except Exception as exc:
        raise InputError(f"{kubeconfig}: cannot use the kubeconfig: {_one_line(exc)}") from None
    names = [c.get("name") for c in contexts or [] if isinstance(c, dict)]
    if target.context and target.context not in names:
        known = ", ".join(str(n) for n in names) or "none"
        raise InputError(f"{kubeconfig}: no context {target.context!r} (known: {known})")
    context = target.context or (active or {}).get("name") or "kubernetes"
    try:
        config.load_kube_config(
            config_file=kubeconfig,
            context=target.context,
            client_configuration=configuration,
            persist_config=False,
        )
    except Exception as exc:
        raise InputError(
            f"{kubeconfig}: cannot use context {context!r}: {_one_line(exc)}"
        ) from None
    configuration.retries = 0
    server = str(configuration.host)
    api = client.ApiClient(configuration)
    options = {"_preload_content": False, "_request_timeout": timeout}
    items: list[object] = []
    try:
        for resource, api_class, method in _BUILTIN:
            lister = getattr(getattr(client, api_class)(api), method)
            items.append(_listed(resource, server, partial(lister, **options)))
        custom = client.CustomObjectsApi(api)
        for group, version, plural in _CUSTOM:
            found = _listed(
                f"{plural}.{group}",
                server,
                partial(custom.list_cluster_custom_object, group, version, plural, **options),
                missing_ok=True,
            )
            if found is not None:
                items.append(found)
    finally:
        api.close()
    return items, context, server


def _listed(
    resource: str, server: str, call: Callable[[], Any], missing_ok: bool = False
) -> object:
    client, _ = _client_modules()
    try:
        response = call()
        data = response.data
    except client.ApiException as exc:
        status = int(exc.status or 0)
        if status == 404 and missing_ok:
            return None
        reason = {401: "unauthorized", 403: "forbidden"}.get(status, f"refused ({status})")
        detail = _status_message(exc.body)
        raise ComponentError(
            f"kubernetes API {server}: listing {resource} is {reason}"
            + (f": {detail}" if detail else ""),
            hint="give the kubeconfig's user the right to list it (get, list)"
            if status in (401, 403)
            else None,
        ) from None
    except Exception as exc:
        raise ComponentError(
            f"kubernetes API {server}: cannot list {resource}: {_one_line(exc)}",
            hint="check that the API server is up and the kubeconfig's server address",
        ) from None
    try:
        return json.loads(data)
    except (ValueError, RecursionError, TypeError):
        raise ComponentError(
            f"kubernetes API {server}: the answer listing {resource} is not JSON"
        ) from None


def _default_kubeconfig() -> str:
    """``$KUBECONFIG`` (files joined by ':' are merged, as kubectl does), else ~/.kube/config."""
    return os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")


def _status_message(body: object) -> str:
    """The message of a Kubernetes ``Status`` answer, on one line."""
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if not isinstance(body, str):
        return ""
    try:
        status = json.loads(body)
    except ValueError:
        return ""
    message = status.get("message") if isinstance(status, dict) else None
    return _one_line(message) if isinstance(message, str) else ""


def _one_line(error: object) -> str:
    text = " ".join(str(error).split())
    return text[:300] + ("..." if len(text) > 300 else "")


def _client_modules() -> tuple[Any, Any]:
    try:
        from kubernetes import client, config
    except ImportError:
        raise RegistryError(
            "kubernetes:// needs the kubernetes client, which is not installed",
            hint="pip install 'haprotect[k8s]', or read a dump with kubernetes+file:///path",
        ) from None
    return client, config
