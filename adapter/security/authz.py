"""May they: delegated authorization with SubjectAccessReviews, as aggregated API servers do it.

Every authenticated request is described by the attributes Kubernetes' RBAC understands,
derived from its path exactly as k8s.io/apiserver's ``RequestInfoFactory`` does, so that
the RBAC rules written for any custom metrics adapter work unchanged:

=====================================================================  =====================
path                                                                   attributes
=====================================================================  =====================
``/apis``, ``/apis/custom.metrics.k8s.io``,                            non-resource ``get``
``/apis/custom.metrics.k8s.io/v1beta2`` (discovery)                    on that path
``/apis/custom.metrics.k8s.io/v1beta2/namespaces/ns/pods/*/rps``       ``get`` ``pods/rps``
                                                                       named ``*`` in ``ns``
``/apis/custom.metrics.k8s.io/v1beta2/namespaces/ns/deployments.apps   ``get``
/web/rps``                                                             ``deployments.apps
                                                                       /rps`` named ``web``
``/apis/custom.metrics.k8s.io/v1beta2/nodes/n1/cpu``                   ``get`` ``nodes/cpu``
                                                                       named ``n1``, cluster
``/apis/custom.metrics.k8s.io/v1beta2/namespaces/ns/metrics/rps``      ``get`` ``metrics``
                                                                       named ``rps`` in ``ns``
``/apis/external.metrics.k8s.io/v1beta1/namespaces/ns/queue_depth``    ``list``
                                                                       ``queue_depth`` in
                                                                       ``ns``
=====================================================================  =====================

The group is the path's (``custom.metrics.k8s.io`` or ``external.metrics.k8s.io``); the
verb is ``get`` for a GET that names an object, ``list`` for one that does not (``watch``
with ``?watch=true``), ``create``/``update``/``patch``/``delete`` for the other methods.
The HPA controller's built-in role grants ``get``, ``list`` and ``watch`` on ``*`` in both
groups.

A SubjectAccessReview (authorization.k8s.io/v1) asks kube-apiserver about each distinct
(user, attributes) pair; its answer is cached, 10 s when allowed and 5 s when denied, in
a bounded cache keyed by the whole review. Members of ``system:masters`` are allowed
without a review, as kube-apiserver allows them anything.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from adapter.security.authn import UserInfo
from adapter.security.cache import TTLCache
from adapter.security.kubeapi import KubernetesAPI, KubernetesAPIError

__all__ = [
    "AuthorizationResult",
    "RequestAttributes",
    "SubjectAccessReviewAuthorizer",
    "forbidden_message",
    "request_attributes",
    "subject_access_review_spec",
]

logger = logging.getLogger("kubepulse.adapter.security.authz")

_SAR_PATH = "/apis/authorization.k8s.io/v1/subjectaccessreviews"
_API_PREFIXES = frozenset({"api", "apis"})
_GROUPLESS_PREFIXES = frozenset({"api"})
_SPECIAL_VERBS = frozenset({"proxy", "watch"})
_NAMESPACE_SUBRESOURCES = frozenset({"status", "finalize"})
_METHOD_VERBS = {
    "POST": "create",
    "GET": "get",
    "HEAD": "get",
    "PUT": "update",
    "PATCH": "patch",
    "DELETE": "delete",
}


@dataclass(frozen=True)
class RequestAttributes:
    """What a request does, in the terms of Kubernetes authorization.

    Attributes:
        verb: ``get``, ``list``, ``watch``, ``create`` ... for resource requests; the
            lower-case HTTP method for non-resource requests.
        path: the request path.
        is_resource_request: whether the path names an API resource (else non-resource).
        api_group: the API group (``custom.metrics.k8s.io``), empty for the core group.
        api_version: the group version (``v1beta2``).
        namespace: the namespace, empty for cluster-scoped requests.
        resource: the resource (``pods``, ``deployments.apps``, ``metrics``).
        subresource: the subresource (for the custom metrics API, the metric's name).
        name: the object's name (``*`` for every object matching a selector).
    """

    verb: str
    path: str
    is_resource_request: bool = False
    api_group: str = ""
    api_version: str = ""
    namespace: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""

    def describe(self) -> str:
        """The action in words, as in Kubernetes' forbidden messages."""
        if not self.is_resource_request:
            return f"{self.verb} path {_quote(self.path)}"
        resource = f"{self.resource}/{self.subresource}" if self.subresource else self.resource
        where = (
            f"in the namespace {_quote(self.namespace)}"
            if self.namespace
            else "at the cluster scope"
        )
        return (
            f"{self.verb} resource {_quote(resource)} in API group {_quote(self.api_group)} {where}"
        )


def request_attributes(
    method: str, path: str, query_string: bytes | str = b""
) -> RequestAttributes:
    """Derive authorization attributes from a request, as k8s.io/apiserver does.

    ``path`` is the decoded URL path (the ASGI scope's ``path``); ``query_string`` matters
    only for ``watch``.
    """
    verb = method.lower()
    parts = path.strip("/").split("/") if path.strip("/") else []
    non_resource = RequestAttributes(verb=verb, path=path)
    if len(parts) < 3 or parts[0] not in _API_PREFIXES:
        return non_resource
    prefix = parts[0]
    rest = parts[1:]
    group = ""
    if prefix not in _GROUPLESS_PREFIXES:
        # /apis/<group>/<version> and shorter are discovery: non-resource requests.
        if len(rest) < 3:
            return non_resource
        group, rest = rest[0], rest[1:]
    version, rest = rest[0], rest[1:]
    if rest and rest[0] in _SPECIAL_VERBS:
        if len(rest) < 2:
            return RequestAttributes(
                verb=verb, path=path, is_resource_request=True, api_group=group, api_version=version
            )
        verb, rest = rest[0], rest[1:]
    else:
        verb = _METHOD_VERBS.get(method.upper(), "")
    namespace = ""
    if rest and rest[0] == "namespaces" and len(rest) > 1:
        namespace = rest[1]
        if len(rest) > 2 and rest[2] not in _NAMESPACE_SUBRESOURCES:
            rest = rest[2:]
    resource = rest[0] if rest else ""
    name = rest[1] if len(rest) >= 2 else ""
    subresource = rest[2] if len(rest) >= 3 and verb != "proxy" else ""
    if not name and verb == "get":
        watch = _query_values(query_string, "watch")
        verb = "watch" if watch and watch[0].lower() not in ("false", "0") else "list"
    if not name and verb == "delete":
        verb = "deletecollection"
    return RequestAttributes(
        verb=verb,
        path=path,
        is_resource_request=True,
        api_group=group,
        api_version=version,
        namespace=namespace,
        resource=resource,
        subresource=subresource,
        name=name,
    )


def subject_access_review_spec(user: UserInfo, attributes: RequestAttributes) -> dict[str, Any]:
    """The ``spec`` of the SubjectAccessReview for ``user`` doing ``attributes``."""
    spec: dict[str, Any] = {"user": user.name, "groups": list(user.groups)}
    if user.uid:
        spec["uid"] = user.uid
    if user.extra:
        spec["extra"] = {key: list(values) for key, values in sorted(user.extra.items())}
    if attributes.is_resource_request:
        resource_attributes = {
            "namespace": attributes.namespace,
            "verb": attributes.verb,
            "group": attributes.api_group,
            "version": attributes.api_version,
            "resource": attributes.resource,
            "subresource": attributes.subresource,
            "name": attributes.name,
        }
        spec["resourceAttributes"] = {k: v for k, v in resource_attributes.items() if v}
    else:
        spec["nonResourceAttributes"] = {"path": attributes.path, "verb": attributes.verb}
    return spec


def forbidden_message(user: UserInfo, attributes: RequestAttributes, reason: str = "") -> str:
    """The message of the 403 Status, worded as kube-apiserver words it."""
    message = f"User {_quote(user.name)} cannot {attributes.describe()}"
    if reason:
        message = f"{message}: {reason}"
    if not attributes.is_resource_request:
        return f"forbidden: {message}"
    resource = (
        f"{attributes.resource}.{attributes.api_group}"
        if attributes.api_group
        else attributes.resource
    )
    if attributes.name:
        return f"{resource} {_quote(attributes.name)} is forbidden: {message}"
    return f"{resource} is forbidden: {message}"


@dataclass(frozen=True)
class AuthorizationResult:
    """The decision about one request.

    Attributes:
        allowed: whether the request may proceed.
        reason: kube-apiserver's reason (RBAC names the binding that allowed it).
        cached: the decision came from the cache or needed no review.
    """

    allowed: bool
    reason: str = ""
    cached: bool = False


class SubjectAccessReviewAuthorizer:
    """Asks kube-apiserver whether a user may do something, and caches the answers briefly.

    Args:
        api: kube-apiserver client; its identity needs ``create`` on
            ``subjectaccessreviews`` (the ClusterRole ``system:auth-delegator``).
        allow_ttl: seconds an "allowed" answer is kept.
        deny_ttl: seconds a "denied" answer is kept; short, so a new RoleBinding takes
            effect quickly.
        max_entries: the cache's bound.
        always_allow_groups: members are allowed without a review (``system:masters``).
        clock: monotonic seconds, for the cache.
    """

    def __init__(
        self,
        api: KubernetesAPI,
        *,
        allow_ttl: float = 10.0,
        deny_ttl: float = 5.0,
        max_entries: int = 4096,
        always_allow_groups: Iterable[str] = ("system:masters",),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._api = api
        self._allow_ttl = allow_ttl
        self._deny_ttl = deny_ttl
        self._always_allow_groups = frozenset(always_allow_groups)
        self._cache: TTLCache[str, AuthorizationResult] = TTLCache(max_entries, clock)

    @property
    def cache(self) -> TTLCache[str, AuthorizationResult]:
        """The answer cache (for inspection and tests)."""
        return self._cache

    async def authorize(self, user: UserInfo, attributes: RequestAttributes) -> AuthorizationResult:
        """Whether ``user`` may do ``attributes``.

        Raises:
            KubernetesAPIError: the review could not be made; nothing is cached.
        """
        if self._always_allow_groups & set(user.groups):
            return AuthorizationResult(True, "member of an always-allowed group", cached=True)
        spec = subject_access_review_spec(user, attributes)
        key = json.dumps(spec, sort_keys=True, separators=(",", ":"))
        result, cached = await self._cache.get_or_load(
            key,
            lambda: self._review(spec),
            lambda answer: self._allow_ttl if answer.allowed else self._deny_ttl,
        )
        if cached:
            return AuthorizationResult(result.allowed, result.reason, cached=True)
        return result

    async def _review(self, spec: Mapping[str, Any]) -> AuthorizationResult:
        answer = await self._api.create(
            _SAR_PATH,
            {
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SubjectAccessReview",
                "spec": dict(spec),
            },
        )
        status = answer.get("status")
        if not isinstance(status, Mapping):
            raise KubernetesAPIError("SubjectAccessReview answer has no status")
        reason = str(status.get("reason") or "")
        if status.get("evaluationError"):
            logger.info(
                "SubjectAccessReview evaluation error",
                extra={"fields": {"error": str(status["evaluationError"])}},
            )
        # "denied" is an explicit no; neither allowed nor denied is no opinion, which for the
        # only authorizer there is means no as well.
        allowed = bool(status.get("allowed")) and not status.get("denied")
        return AuthorizationResult(allowed, reason)


def _quote(text: str) -> str:
    # Double-quoted with escapes, like Go's %q in kube-apiserver's messages.
    return json.dumps(text, ensure_ascii=False)


def _query_values(query_string: bytes | str, key: str) -> Sequence[str]:
    text = query_string.decode("latin-1") if isinstance(query_string, bytes) else query_string
    return urllib.parse.parse_qs(text, keep_blank_values=True).get(key, [])
