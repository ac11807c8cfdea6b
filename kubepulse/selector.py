"""Kubernetes label selectors: parsing, matching and canonical rendering.

Two spellings of the same idea are supported:

* the string form of ``labelSelector`` / ``metricLabelSelector`` query parameters and
  ``kubectl -l``, parsed by :func:`parse_selector`::

      selector    ::= "" | requirement ("," requirement)*
      requirement ::= key                         (the label exists)
                    | "!" key                     (the label does not exist)
                    | key ("=" | "==" | "!=") [value]
                    | key ("in" | "notin") "(" [value] ("," [value])* ")"

  Whitespace (space, tab, CR, LF) may surround every token. A value may be empty
  (``tier=`` requires the label to be present with an empty value; ``in (,a)`` includes
  the empty value), as in Kubernetes;

* the API form of ``metav1.LabelSelector`` objects, ``{"matchLabels": {...},
  "matchExpressions": [{"key", "operator", "values"}]}``, read by
  :meth:`LabelSelector.from_api`.

Keys and values are validated with Kubernetes' rules: a key is an optional DNS subdomain
prefix and ``/`` followed by a name of 1 to 63 characters (letters, digits, ``-``, ``_``,
``.``, starting and ending with a letter or digit); a value is empty or follows the rules
of a name. The ``>`` and ``<`` operators that ``labels.Parse`` also accepts for node
affinity are refused, because label matchers of Prometheus and of the custom metrics API
have no numeric comparison.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kubepulse.errors import KubepulseValueError

__all__ = [
    "LabelSelector",
    "Operator",
    "Requirement",
    "SelectorError",
    "parse_selector",
]

_MAX_NAME_LENGTH = 63
_MAX_PREFIX_LENGTH = 253
_ALPHANUMERIC = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_NAME_CHARACTERS = _ALPHANUMERIC | frozenset("-_.")
_LOWER_ALPHANUMERIC = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
_PREFIX_CHARACTERS = _LOWER_ALPHANUMERIC | frozenset("-.")
# Kubernetes' lexer treats exactly these as whitespace and as token boundaries.
_WHITESPACE = frozenset(" \t\r\n")
_SYMBOLS = frozenset("=!(),<>")

_GRAMMAR_HINT = (
    "a label selector is a comma-separated list of requirements: key=value, key==value, "
    "key!=value, key in (v1,v2), key notin (v1,v2), key (the label exists) or !key "
    "(it does not)"
)


class SelectorError(KubepulseValueError):
    """A label selector (string or API form) is malformed or invalid.

    Attributes:
        text: the selector string, or ``None`` for errors in the API form or in a
            requirement built directly.
        position: index in ``text`` of the character the error is about, or ``None``.
        problem: what was wrong and what was expected, without the picture.
    """

    def __init__(
        self, problem: str, *, text: str | None = None, position: int | None = None
    ) -> None:
        self.text = text
        self.position = position
        self.problem = problem
        if text is None or position is None:
            message = f"invalid label selector: {problem}; {_GRAMMAR_HINT}"
        else:
            # Tabs and newlines would break the alignment of the caret, so show them as
            # spaces; every character keeps its column.
            shown = "".join(" " if character in _WHITESPACE else character for character in text)
            message = (
                f"invalid label selector at position {position}: {problem}\n"
                f"    {shown}\n"
                f"    {' ' * position}^\n"
                f"{_GRAMMAR_HINT[0].upper()}{_GRAMMAR_HINT[1:]}."
            )
        super().__init__(message)


class Operator(enum.Enum):
    """How a :class:`Requirement` compares a label to its values.

    The values are the operator names of Kubernetes' ``selection`` package. ``==`` is
    read as :attr:`EQUALS`: the two mean the same and the canonical form writes ``=``.
    """

    EQUALS = "="
    NOT_EQUALS = "!="
    IN = "in"
    NOT_IN = "notin"
    EXISTS = "exists"
    DOES_NOT_EXIST = "!"


# Operator names of metav1.LabelSelectorRequirement (the API form).
_API_OPERATORS: dict[str, Operator] = {
    "In": Operator.IN,
    "NotIn": Operator.NOT_IN,
    "Exists": Operator.EXISTS,
    "DoesNotExist": Operator.DOES_NOT_EXIST,
}


@dataclass(frozen=True)
class Requirement:
    """One condition on one label key.

    ``values`` holds exactly one value for ``=`` and ``!=``, at least one for ``in`` and
    ``notin`` and none for exists / does-not-exist; any iterable of strings is accepted
    and stored as a frozenset. Key and values are validated when the requirement is built.

    Raises:
        SelectorError: the key or a value breaks Kubernetes' label syntax, or the number
            of values does not suit the operator.
    """

    key: str
    operator: Operator
    values: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        object.__setattr__(self, "values", frozenset(self.values))
        key_problem = _key_problem(self.key)
        if key_problem is not None:
            raise SelectorError(f"invalid label key {self.key!r}: {key_problem[1]}")
        for value in sorted(self.values):
            value_problem = _value_problem(value)
            if value_problem is not None:
                raise SelectorError(
                    f"invalid value {value!r} for label {self.key!r}: {value_problem[1]}"
                )
        count = len(self.values)
        if self.operator in {Operator.EQUALS, Operator.NOT_EQUALS} and count != 1:
            raise SelectorError(
                f"'{self.key}{self.operator.value}' needs exactly one value, got {count}"
            )
        if self.operator in {Operator.IN, Operator.NOT_IN} and count == 0:
            raise SelectorError(
                f"'{self.key} {self.operator.value}' needs at least one value, got none"
            )
        if self.operator in {Operator.EXISTS, Operator.DOES_NOT_EXIST} and count != 0:
            raise SelectorError(
                f"an existence test on {self.key!r} takes no values, got {sorted(self.values)}"
            )

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether ``labels`` satisfy this requirement, with Kubernetes' semantics.

        ``!=`` and ``notin`` also match objects that do not have the label at all.
        """
        present = self.key in labels
        if self.operator is Operator.EXISTS:
            return present
        if self.operator is Operator.DOES_NOT_EXIST:
            return not present
        if self.operator in {Operator.EQUALS, Operator.IN}:
            return present and labels[self.key] in self.values
        return not present or labels[self.key] not in self.values

    def __str__(self) -> str:
        """The canonical string form, e.g. ``env in (prod,staging)``; values sorted."""
        if self.operator is Operator.EXISTS:
            return self.key
        if self.operator is Operator.DOES_NOT_EXIST:
            return f"!{self.key}"
        values = ",".join(sorted(self.values))
        if self.operator in {Operator.IN, Operator.NOT_IN}:
            return f"{self.key} {self.operator.value} ({values})"
        return f"{self.key}{self.operator.value}{values}"


@dataclass(frozen=True)
class LabelSelector:
    """A conjunction of label requirements; the empty selector matches everything.

    Requirements are kept sorted by key (as Kubernetes sorts them) and, for the same key,
    by their string form, so two selectors that say the same thing in a different order
    compare equal and render identically.
    """

    requirements: tuple[Requirement, ...] = ()

    def __post_init__(self) -> None:
        ordered = tuple(sorted(self.requirements, key=lambda item: (item.key, str(item))))
        object.__setattr__(self, "requirements", ordered)

    @classmethod
    def from_match_labels(cls, match_labels: Mapping[str, str]) -> LabelSelector:
        """The selector requiring every ``key: value`` pair, as in ``matchLabels``.

        Raises:
            SelectorError: a key or value is not a valid label key or value.
        """
        pairs = _string_pairs(match_labels, "matchLabels")
        return cls(
            tuple(Requirement(key, Operator.EQUALS, frozenset({value})) for key, value in pairs)
        )

    @classmethod
    def from_api(cls, api_selector: Mapping[str, object]) -> LabelSelector:
        """Read a ``metav1.LabelSelector`` as found in API objects (a Deployment's
        ``spec.selector``, an HPA metric's ``selector``).

        ``{}`` matches everything. ``matchLabels`` and ``matchExpressions`` are ANDed.
        Expression operators are ``In``, ``NotIn`` (non-empty ``values``), ``Exists`` and
        ``DoesNotExist`` (no ``values``).

        Raises:
            SelectorError: a field has the wrong type, an operator is unknown, the values
                do not suit the operator, or a key or value is invalid. The message names
                the field, such as ``matchExpressions[1].operator``.
        """
        if not isinstance(api_selector, Mapping):
            raise SelectorError(
                f"a label selector object must be a mapping with matchLabels and/or "
                f"matchExpressions, got {type(api_selector).__name__}"
            )
        unknown = sorted(str(name) for name in api_selector if name not in _API_FIELDS)
        if unknown:
            raise SelectorError(
                f"unknown field(s) {unknown} in a label selector object; "
                "only matchLabels and matchExpressions are allowed"
            )
        requirements: list[Requirement] = []
        match_labels = api_selector.get("matchLabels") or {}
        if not isinstance(match_labels, Mapping):
            raise SelectorError(
                f"matchLabels must be a mapping of label keys to values, "
                f"got {type(match_labels).__name__}"
            )
        try:
            requirements.extend(cls.from_match_labels(match_labels).requirements)
        except SelectorError as error:
            raise SelectorError(f"matchLabels: {error.problem}") from error
        expressions = api_selector.get("matchExpressions") or []
        if not isinstance(expressions, Sequence) or isinstance(expressions, str):
            raise SelectorError(
                f"matchExpressions must be a list of {{key, operator, values}} objects, "
                f"got {type(expressions).__name__}"
            )
        for index, expression in enumerate(expressions):
            requirements.append(_requirement_from_api(expression, f"matchExpressions[{index}]"))
        return cls(tuple(requirements))

    @property
    def is_empty(self) -> bool:
        """True when the selector has no requirements and so matches everything."""
        return not self.requirements

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether ``labels`` satisfy every requirement."""
        return all(requirement.matches(labels) for requirement in self.requirements)

    def without(self, keys: Collection[str]) -> LabelSelector:
        """The selector with every requirement on one of ``keys`` removed."""
        return LabelSelector(
            tuple(requirement for requirement in self.requirements if requirement.key not in keys)
        )

    def split_reserved(self, prefix: str) -> tuple[LabelSelector, dict[str, str]]:
        """Separate requirements whose key starts with ``prefix`` from the rest.

        The adapter passes options such as ``kubepulse.io/window=5m`` inside the metric
        selector of an HPA. This returns the selector without them (to filter series by)
        and a ``key -> value`` dict of the options. An option may be written ``key=value``,
        ``key==value`` or ``key in (value)`` (what an HPA's ``matchExpressions`` with a
        single value becomes); the same key may repeat only with the same value.

        Raises:
            SelectorError: a reserved key is used with another operator, with several
                values, or twice with different values.
        """
        remaining: list[Requirement] = []
        options: dict[str, str] = {}
        for requirement in self.requirements:
            if not requirement.key.startswith(prefix):
                remaining.append(requirement)
                continue
            is_single_value = requirement.operator in {Operator.EQUALS, Operator.IN} and (
                len(requirement.values) == 1
            )
            if not is_single_value:
                raise SelectorError(
                    f"{str(requirement)!r} uses the reserved key {requirement.key!r} "
                    f"as a filter; keys starting with {prefix!r} are options, give them "
                    f"one value as '{requirement.key}=value'"
                )
            (value,) = requirement.values
            previous = options.setdefault(requirement.key, value)
            if previous != value:
                raise SelectorError(
                    f"the option {requirement.key!r} is given twice, as {previous!r} and "
                    f"{value!r}; give it once"
                )
        return LabelSelector(tuple(remaining)), options

    def __str__(self) -> str:
        """The canonical string form, which :func:`parse_selector` reads back.

        Requirements are joined by ``,`` without spaces, sorted by key as Kubernetes'
        ``Selector.String()`` renders them, values sorted inside ``in (...)``:
        ``"!legacy, env in (staging,prod), app=web"`` renders as
        ``"app=web,env in (prod,staging),!legacy"``. ``==`` is written ``=``.
        """
        return ",".join(str(requirement) for requirement in self.requirements)


_API_FIELDS = frozenset({"matchLabels", "matchExpressions"})


def parse_selector(text: str) -> LabelSelector:
    """Parse the string form of a label selector.

    ``parse_selector("app=web, env in (prod,staging), !legacy")`` requires ``app`` to be
    ``web``, ``env`` to be ``prod`` or ``staging``, and ``legacy`` to be absent. An empty
    or all-whitespace string is the selector that matches everything.

    Raises:
        SelectorError: the string is malformed or a key or value is invalid. ``position``
            is the index of the offending character, and the message shows the input with
            a caret under it and says what was expected there.
    """
    return _Parser(text).parse()


# ------------------------------------------------------------------ validation


def _name_problem(name: str, what: str) -> tuple[int, str] | None:
    """Where and why ``name`` is not a valid label name or value, or None if it is."""
    if len(name) > _MAX_NAME_LENGTH:
        return _MAX_NAME_LENGTH, f"{what} is {len(name)} characters long, the limit is 63"
    for offset, character in enumerate(name):
        if character not in _NAME_CHARACTERS:
            return offset, (
                f"{what} may contain only letters, digits, '-', '_' and '.', found {character!r}"
            )
    if name and name[0] not in _ALPHANUMERIC:
        return 0, f"{what} must start with a letter or digit, found {name[0]!r}"
    if name and name[-1] not in _ALPHANUMERIC:
        return len(name) - 1, f"{what} must end with a letter or digit, found {name[-1]!r}"
    return None


_SUBDOMAIN_PARTS = (
    "must be a DNS subdomain whose dot-separated parts start and end with a lowercase "
    "letter or digit"
)


def _prefix_problem(prefix: str) -> tuple[int, str] | None:
    """Where and why ``prefix`` is not a DNS subdomain, or None if it is."""
    what = "the key prefix (before '/')"
    if not prefix:
        return 0, f"{what} is empty; drop the '/' or give a domain such as 'example.com/'"
    if len(prefix) > _MAX_PREFIX_LENGTH:
        return _MAX_PREFIX_LENGTH, f"{what} is {len(prefix)} characters long, the limit is 253"
    offset = 0
    for part in prefix.split("."):
        for index, character in enumerate(part):
            if character not in _PREFIX_CHARACTERS:
                return offset + index, (
                    f"{what} must be a DNS subdomain: lowercase letters, digits, '-' "
                    f"and '.', found {character!r}"
                )
        if not part or part[0] not in _LOWER_ALPHANUMERIC:
            return offset, f"{what} {_SUBDOMAIN_PARTS}"
        if part[-1] not in _LOWER_ALPHANUMERIC:
            return offset + len(part) - 1, f"{what} {_SUBDOMAIN_PARTS}"
        offset += len(part) + 1
    return None


def _key_problem(key: str) -> tuple[int, str] | None:
    """Where (offset in ``key``) and why ``key`` is not a valid label key, or None."""
    if not key:
        return 0, "the key is empty"
    prefix, slash, name = key.partition("/")
    if not slash:
        prefix, name = "", key
    else:
        if "/" in name:
            return len(prefix) + 1 + name.index("/"), "a key may contain at most one '/'"
        prefix_problem = _prefix_problem(prefix)
        if prefix_problem is not None:
            return prefix_problem
    name_offset = len(prefix) + len(slash)
    if not name:
        return name_offset, "the name after '/' is empty"
    name_problem = _name_problem(name, "the key name" if slash else "a key")
    if name_problem is not None:
        return name_offset + name_problem[0], name_problem[1]
    return None


def _value_problem(value: str) -> tuple[int, str] | None:
    """Where and why ``value`` is not a valid label value, or None if it is."""
    return _name_problem(value, "a value")


def _string_pairs(mapping: Mapping[Any, Any], where: str) -> Iterable[tuple[str, str]]:
    for key, value in mapping.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise SelectorError(
                f"{where} must map label keys to string values, got {key!r}: {value!r}"
            )
        yield key, value


def _requirement_from_api(expression: object, where: str) -> Requirement:
    if not isinstance(expression, Mapping):
        raise SelectorError(
            f"{where} must be an object with key, operator and values, "
            f"got {type(expression).__name__}"
        )
    key = expression.get("key")
    if not isinstance(key, str):
        raise SelectorError(f"{where}.key must be a label key string, got {key!r}")
    operator_name = expression.get("operator")
    operator = _API_OPERATORS.get(operator_name) if isinstance(operator_name, str) else None
    if operator is None:
        raise SelectorError(
            f"{where}.operator {operator_name!r} is not a label selector operator; "
            f"use one of {', '.join(_API_OPERATORS)}"
        )
    values = expression.get("values") or []
    if not isinstance(values, Sequence) or isinstance(values, str):
        raise SelectorError(f"{where}.values must be a list of strings, got {values!r}")
    for value in values:
        if not isinstance(value, str):
            raise SelectorError(f"{where}.values must be a list of strings, got {value!r}")
    if operator in {Operator.IN, Operator.NOT_IN} and not values:
        raise SelectorError(f"{where}: operator {operator_name} needs a non-empty values list")
    if operator in {Operator.EXISTS, Operator.DOES_NOT_EXIST} and values:
        raise SelectorError(
            f"{where}: operator {operator_name} takes no values; remove values {list(values)}"
        )
    try:
        return Requirement(key, operator, frozenset(values))
    except SelectorError as error:
        raise SelectorError(f"{where}: {error.problem}") from error


# ------------------------------------------------------------------ parsing


class _Kind(enum.Enum):
    WORD = "word"
    EQUALS = "'='"
    DOUBLE_EQUALS = "'=='"
    NOT_EQUALS = "'!='"
    BANG = "'!'"
    OPEN = "'('"
    CLOSE = "')'"
    COMMA = "','"
    END = "end of selector"


@dataclass(frozen=True)
class _Token:
    kind: _Kind
    text: str
    position: int

    def describe(self) -> str:
        return "the end of the selector" if self.kind is _Kind.END else repr(self.text)


_SYMBOL_KINDS: dict[str, _Kind] = {
    "==": _Kind.DOUBLE_EQUALS,
    "!=": _Kind.NOT_EQUALS,
    "=": _Kind.EQUALS,
    "!": _Kind.BANG,
    "(": _Kind.OPEN,
    ")": _Kind.CLOSE,
    ",": _Kind.COMMA,
}
_VALUE_OPERATORS: dict[_Kind, Operator] = {
    _Kind.EQUALS: Operator.EQUALS,
    _Kind.DOUBLE_EQUALS: Operator.EQUALS,
    _Kind.NOT_EQUALS: Operator.NOT_EQUALS,
}
_SET_OPERATORS: dict[str, Operator] = {"in": Operator.IN, "notin": Operator.NOT_IN}


class _Parser:
    """Recursive-descent parser over tokens, following Kubernetes' ``labels.Parse``."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = self._tokenize(text)
        self.index = 0

    def error(self, problem: str, position: int) -> SelectorError:
        return SelectorError(problem, text=self.text, position=position)

    def _tokenize(self, text: str) -> list[_Token]:
        tokens: list[_Token] = []
        position = 0
        while position < len(text):
            character = text[position]
            if character in _WHITESPACE:
                position += 1
                continue
            if character in _SYMBOLS:
                symbol = text[position : position + 2]
                if symbol not in _SYMBOL_KINDS:
                    symbol = character
                if symbol in {"<", ">"}:
                    raise self.error(
                        f"the {symbol!r} operator is not supported: label selectors here "
                        "compare values with =, ==, !=, in and notin only",
                        position,
                    )
                tokens.append(_Token(_SYMBOL_KINDS[symbol], symbol, position))
                position += len(symbol)
                continue
            start = position
            while (
                position < len(text)
                and text[position] not in _WHITESPACE
                and text[position] not in _SYMBOLS
            ):
                position += 1
            tokens.append(_Token(_Kind.WORD, text[start:position], start))
        tokens.append(_Token(_Kind.END, "", len(text)))
        return tokens

    def peek(self) -> _Token:
        return self.tokens[self.index]

    def advance(self) -> _Token:
        token = self.tokens[self.index]
        if token.kind is not _Kind.END:
            self.index += 1
        return token

    def parse(self) -> LabelSelector:
        requirements: list[Requirement] = []
        if self.peek().kind is _Kind.END:
            return LabelSelector()
        while True:
            requirement = self.parse_requirement()
            requirements.append(requirement)
            separator = self.advance()
            if separator.kind is _Kind.END:
                return LabelSelector(tuple(requirements))
            if separator.kind is not _Kind.COMMA:
                raise self.error(
                    f"expected ',' or the end of the selector after '{requirement}', "
                    f"found {separator.describe()}",
                    separator.position,
                )
            following = self.peek()
            if following.kind not in {_Kind.WORD, _Kind.BANG}:
                raise self.error(
                    f"expected a requirement (a label key or '!key') after ',', "
                    f"found {following.describe()}",
                    following.position,
                )

    def parse_requirement(self) -> Requirement:
        if self.peek().kind is _Kind.BANG:
            self.advance()
            key = self.parse_key(after="'!'")
            following = self.peek()
            if following.kind not in {_Kind.COMMA, _Kind.END}:
                raise self.error(
                    f"expected ',' or the end of the selector after '!{key}' "
                    f"('!key' takes no operator or value), found {following.describe()}",
                    following.position,
                )
            return Requirement(key, Operator.DOES_NOT_EXIST)

        key = self.parse_key(after=None)
        # A key on its own, followed by ',' or the end, is an existence test.
        if self.peek().kind in {_Kind.COMMA, _Kind.END}:
            return Requirement(key, Operator.EXISTS)
        operator_token = self.advance()
        if operator_token.kind in _VALUE_OPERATORS:
            value = self.parse_exact_value(key, operator_token)
            return Requirement(key, _VALUE_OPERATORS[operator_token.kind], frozenset({value}))
        # 'in' and 'notin' are keywords only here; as keys or values they are plain words.
        if operator_token.kind is _Kind.WORD and operator_token.text in _SET_OPERATORS:
            values = self.parse_value_set(key, operator_token)
            return Requirement(key, _SET_OPERATORS[operator_token.text], values)
        raise self.error(
            f"expected an operator (=, ==, !=, in, notin), ',' or the end of the selector "
            f"after the key {key!r}, found {operator_token.describe()}",
            operator_token.position,
        )

    def parse_key(self, after: str | None) -> str:
        token = self.advance()
        if token.kind is not _Kind.WORD:
            expected = "a label key after '!'" if after else "a requirement (a label key or '!key')"
            raise self.error(f"expected {expected}, found {token.describe()}", token.position)
        problem = _key_problem(token.text)
        if problem is not None:
            offset, reason = problem
            raise self.error(f"invalid label key {token.text!r}: {reason}", token.position + offset)
        return token.text

    def parse_exact_value(self, key: str, operator_token: _Token) -> str:
        token = self.peek()
        # 'key=' followed by ',' or the end means the empty value, as in Kubernetes.
        if token.kind in {_Kind.COMMA, _Kind.END}:
            return ""
        if token.kind is not _Kind.WORD:
            raise self.error(
                f"expected a value after '{key}{operator_token.text}', found {token.describe()}",
                token.position,
            )
        self.advance()
        return self.checked_value(key, token)

    def parse_value_set(self, key: str, operator_token: _Token) -> frozenset[str]:
        opening = self.advance()
        if opening.kind is not _Kind.OPEN:
            raise self.error(
                f"expected '(' after '{key} {operator_token.text}', found {opening.describe()}",
                opening.position,
            )
        values: set[str] = set()
        # An empty slot between '(', ',' and ')' is the empty value, as in Kubernetes.
        while True:
            token = self.advance()
            if token.kind is _Kind.WORD:
                values.add(self.checked_value(key, token))
                separator = self.advance()
                if separator.kind is _Kind.CLOSE:
                    return frozenset(values)
                if separator.kind is not _Kind.COMMA:
                    raise self.error(
                        f"expected ',' or ')' after the value {token.text!r}, "
                        f"found {separator.describe()}",
                        separator.position,
                    )
            elif token.kind is _Kind.COMMA:
                values.add("")
            elif token.kind is _Kind.CLOSE:
                values.add("")
                return frozenset(values)
            else:
                raise self.error(
                    f"expected a value, ',' or ')' in the list of '{key} "
                    f"{operator_token.text}', found {token.describe()}",
                    token.position,
                )

    def checked_value(self, key: str, token: _Token) -> str:
        problem = _value_problem(token.text)
        if problem is not None:
            offset, reason = problem
            raise self.error(
                f"invalid value {token.text!r} for label {key!r}: {reason}",
                token.position + offset,
            )
        return token.text
