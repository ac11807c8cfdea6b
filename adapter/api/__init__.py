"""The metrics API: discovery, ``custom.metrics.k8s.io``, ``external.metrics.k8s.io``.

One router per group of endpoints (:mod:`~adapter.api.discovery`,
:mod:`~adapter.api.custom_metrics`, :mod:`~adapter.api.external_metrics`), errors as
Kubernetes ``Status`` objects (:mod:`~adapter.api.status`), and what the routes share
(:mod:`~adapter.api.context`, :mod:`~adapter.api.common`). :func:`adapter.app.create_app`
wires them; ``docs/adapter.md`` is the user's guide.
"""
