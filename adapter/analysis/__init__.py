"""The adapter's analysis: what its analyzer endpoints need from the adapter itself.

Among them, :mod:`~adapter.analysis.store_history` builds a
:class:`~kubepulse.analysis.inputs.UsageHistory` from the embedded time-series store,
with the same table (:data:`kubepulse.analysis.measures.MEASURES`) as the Prometheus
builder in :mod:`kubepulse.collect.prometheus_history`.
"""
