"""Collection: the I/O that feeds the analyzers.

Objects from kube-apiserver (paged lists and watches) and usage history from
Prometheus, the adapter's store or metrics-server, turned into the
:class:`~kubepulse.analysis.inputs.ClusterSnapshot` and
:class:`~kubepulse.analysis.inputs.UsageHistory` that :mod:`kubepulse.analysis` takes.
"""
