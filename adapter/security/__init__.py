"""The adapter's security (DESIGN.md, Contract 4): HTTPS, delegated authentication and
authorization, the way every Kubernetes aggregated API server does them.

- :mod:`~adapter.security.tls`: the serving certificate (given or self-signed), the
  server's TLS settings, and the client certificate handed to the app per request;
- :mod:`~adapter.security.authn`: front-proxy (request header) authentication from the
  ``extension-apiserver-authentication`` ConfigMap, client certificates, bearer tokens
  through TokenReview;
- :mod:`~adapter.security.authz`: request attributes from paths, SubjectAccessReview;
- :mod:`~adapter.security.middleware`: both as one ASGI middleware;
- :mod:`~adapter.security.stack`: all of it built from the adapter's configuration.

``docs/security.md`` describes the flow and the RBAC the adapter needs.
"""

from __future__ import annotations

from adapter.security.authn import (
    AuthenticationConfig,
    AuthenticationConfigError,
    AuthenticationResult,
    DelegatingAuthenticator,
    RequestHeaderConfig,
    TokenReviewAuthenticator,
    UserInfo,
    parse_authentication_configmap,
)
from adapter.security.authz import (
    AuthorizationResult,
    RequestAttributes,
    SubjectAccessReviewAuthorizer,
    request_attributes,
)
from adapter.security.kubeapi import (
    ClusterConnection,
    KubernetesAPI,
    KubernetesAPIError,
    load_cluster_connection,
)
from adapter.security.middleware import (
    DEFAULT_OPEN_PATHS,
    KubernetesAuthMiddleware,
    authenticated_user,
)
from adapter.security.stack import AdapterSecurity
from adapter.security.tls import (
    PeerCertificateProtocol,
    ServingCertificate,
    TLSSetupError,
    client_certificate_chain,
    ensure_serving_certificate,
    server_ssl_context,
)

__all__ = [
    "DEFAULT_OPEN_PATHS",
    "AdapterSecurity",
    "AuthenticationConfig",
    "AuthenticationConfigError",
    "AuthenticationResult",
    "AuthorizationResult",
    "ClusterConnection",
    "DelegatingAuthenticator",
    "KubernetesAPI",
    "KubernetesAPIError",
    "KubernetesAuthMiddleware",
    "PeerCertificateProtocol",
    "RequestAttributes",
    "RequestHeaderConfig",
    "ServingCertificate",
    "SubjectAccessReviewAuthorizer",
    "TLSSetupError",
    "TokenReviewAuthenticator",
    "UserInfo",
    "authenticated_user",
    "client_certificate_chain",
    "ensure_serving_certificate",
    "load_cluster_connection",
    "parse_authentication_configmap",
    "request_attributes",
    "server_ssl_context",
]
