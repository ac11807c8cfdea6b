"""Unit tests of the node exporter's readers and process-to-pod mapping."""
