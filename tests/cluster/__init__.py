"""A real Kubernetes control plane on loopback for kubepulse's e2e tier.

- :mod:`tests.cluster.pki`: CAs, serving/client certificates, service-account keys.
- :mod:`tests.cluster.controlplane`: starts etcd, kube-apiserver,
  kube-controller-manager, kube-scheduler, kwok and (on demand) metrics-server,
  and gives tests a handle on the result.
- ``tests/cluster/kwok/``: kwok stage, resource-usage and metrics configuration.
- ``python -m tests.cluster``: the same control plane by hand (``up``, ``tools``).

Binaries come from ``scripts/install-test-tools.sh``; see docs/testing.md.
Nothing is imported here so that ``python -m tests.cluster tools`` works even
when a test-only dependency is missing.
"""
