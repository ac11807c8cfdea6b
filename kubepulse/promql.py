"""Writing PromQL safely: string literals and exact-match regular expressions.

Both PromQL builders, the adapter's Prometheus source (``adapter.sources.promql``) and
the analyzers' history (:mod:`kubepulse.collect.prometheus_history`), put label values
that come from users and from the cluster into queries. These two functions are the only
way they do it, so that a namespace or pod name can never change a query's meaning.
"""

from __future__ import annotations

from typing import Final

__all__ = ["escape_regex", "escape_string"]

# RE2's metacharacters: escaped, they match themselves.
_REGEX_SPECIAL: Final = frozenset("\\.+*?()|[]{}^$")


def escape_string(value: str) -> str:
    """``value`` as a PromQL double-quoted string literal, quotes included."""
    escaped = (
        value.replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
    )
    return f'"{escaped}"'


def escape_regex(value: str) -> str:
    """``value`` as an RE2 pattern matching exactly that text (before string escaping)."""
    return "".join(f"\\{char}" if char in _REGEX_SPECIAL else char for char in value)
