"""Label selectors: the string grammar, the API form, matching and reserved options."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from kubepulse.errors import KubepulseError
from kubepulse.selector import (
    LabelSelector,
    Operator,
    Requirement,
    SelectorError,
    parse_selector,
)


def req(key: str, operator: Operator, *values: str) -> Requirement:
    return Requirement(key, operator, frozenset(values))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ()),
        ("  \t\n ", ()),
        ("app=web", (req("app", Operator.EQUALS, "web"),)),
        ("app==web", (req("app", Operator.EQUALS, "web"),)),
        ("app!=web", (req("app", Operator.NOT_EQUALS, "web"),)),
        ("tier=", (req("tier", Operator.EQUALS, ""),)),
        ("tier!=", (req("tier", Operator.NOT_EQUALS, ""),)),
        ("env in (prod,staging)", (req("env", Operator.IN, "prod", "staging"),)),
        ("env notin (canary)", (req("env", Operator.NOT_IN, "canary"),)),
        ("env in(prod)", (req("env", Operator.IN, "prod"),)),
        ("env in ( prod , staging )", (req("env", Operator.IN, "prod", "staging"),)),
        ("env in (prod,prod)", (req("env", Operator.IN, "prod"),)),
        # empty slots are the empty value, as in Kubernetes
        ("env in ()", (req("env", Operator.IN, ""),)),
        ("env in (,prod)", (req("env", Operator.IN, "", "prod"),)),
        ("env in (prod,)", (req("env", Operator.IN, "", "prod"),)),
        ("env in (a,,b)", (req("env", Operator.IN, "", "a", "b"),)),
        ("owner", (req("owner", Operator.EXISTS),)),
        ("!legacy", (req("legacy", Operator.DOES_NOT_EXIST),)),
        ("! legacy", (req("legacy", Operator.DOES_NOT_EXIST),)),
        # 'in' and 'notin' are keywords only in operator position
        ("in in (notin)", (req("in", Operator.IN, "notin"),)),
        ("notin=in", (req("notin", Operator.EQUALS, "in"),)),
        # keys with a DNS prefix, values with every allowed character
        ("app.kubernetes.io/name=web", (req("app.kubernetes.io/name", Operator.EQUALS, "web"),)),
        ("kubepulse.io/window=5m", (req("kubepulse.io/window", Operator.EQUALS, "5m"),)),
        ("a-b.c_D9=X-y_z.0", (req("a-b.c_D9", Operator.EQUALS, "X-y_z.0"),)),
        ("k=" + "v" * 63, (req("k", Operator.EQUALS, "v" * 63),)),
        ("a" * 63, (req("a" * 63, Operator.EXISTS),)),
        # several requirements, sorted by key
        (
            "x in (a), y!=b, !z ,w",
            (
                req("w", Operator.EXISTS),
                req("x", Operator.IN, "a"),
                req("y", Operator.NOT_EQUALS, "b"),
                req("z", Operator.DOES_NOT_EXIST),
            ),
        ),
        (
            "b=1,a=2",
            (req("a", Operator.EQUALS, "2"), req("b", Operator.EQUALS, "1")),
        ),
        ("a=b\t,\nc=d", (req("a", Operator.EQUALS, "b"), req("c", Operator.EQUALS, "d"))),
    ],
)
def test_parse_selector(text: str, expected: tuple[Requirement, ...]) -> None:
    assert parse_selector(text).requirements == expected


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("", ""),
        ("app==web", "app=web"),
        ("app = web", "app=web"),
        ("!legacy, env in (staging,prod), app=web", "app=web,env in (prod,staging),!legacy"),
        ("env notin (b, a)", "env notin (a,b)"),
        ("env in (,x)", "env in (,x)"),
        ("env in ()", "env in ()"),
        ("tier=", "tier="),
        ("b=1,a in (z,y),a=2", "a in (y,z),a=2,b=1"),
        ("owner,  !gone", "!gone,owner"),
    ],
)
def test_str_is_canonical_and_parses_back(text: str, canonical: str) -> None:
    selector = parse_selector(text)
    assert str(selector) == canonical
    assert parse_selector(canonical) == selector


def test_selectors_saying_the_same_thing_are_equal_and_hashable() -> None:
    first = parse_selector("a=1, b in (x,y), !c")
    second = parse_selector("!c,b in (y,x),a==1")
    assert first == second
    assert len({first, second}) == 1


def caret_line(text: str, position: int) -> str:
    return "    " + " " * position + "^"


@pytest.mark.parametrize(
    ("text", "position", "fragment"),
    [
        # structure
        ("a in (x y)", 8, "expected ',' or ')' after the value 'x', found 'y'"),
        ("a in (x", 7, "expected ',' or ')' after the value 'x', found the end of the selector"),
        ("a in (", 6, "expected a value, ',' or ')' in the list of 'a in', found the end"),
        ("a in (=)", 6, "expected a value, ',' or ')' in the list of 'a in', found '='"),
        ("a in x", 5, "expected '(' after 'a in', found 'x'"),
        ("a notin", 7, "expected '(' after 'a notin', found the end of the selector"),
        ("a=b c", 4, "expected ',' or the end of the selector after 'a=b', found 'c'"),
        ("a in (x)b", 8, "expected ',' or the end of the selector after 'a in (x)', found 'b'"),
        ("a=b=c", 3, "after 'a=b', found '='"),
        ("a b", 2, "expected an operator (=, ==, !=, in, notin), ',' or the end"),
        ("a!b", 1, "after the key 'a', found '!'"),
        ("a(b)", 1, "after the key 'a', found '('"),
        ("a===b", 3, "expected a value after 'a==', found '='"),
        ("a=!b", 2, "expected a value after 'a=', found '!'"),
        ("a=(b)", 2, "expected a value after 'a=', found '('"),
        (",a", 0, "expected a requirement (a label key or '!key'), found ','"),
        ("a,", 2, "expected a requirement (a label key or '!key') after ',', found the end"),
        ("a=b,,c", 4, "after ',', found ','"),
        ("=b", 0, "expected a requirement (a label key or '!key'), found '='"),
        ("!=a", 0, "found '!='"),
        (")", 0, "found ')'"),
        ("!", 1, "expected a label key after '!', found the end of the selector"),
        ("!!a", 1, "expected a label key after '!', found '!'"),
        ("!a=b", 2, "after '!a' ('!key' takes no operator or value), found '='"),
        ("!a in (b)", 3, "after '!a'"),
        ("a>1", 1, "the '>' operator is not supported"),
        ("a<1", 1, "the '<' operator is not supported"),
        # keys
        ("-a=b", 0, "invalid label key '-a': a key must start with a letter or digit"),
        ("a-=b", 1, "invalid label key 'a-': a key must end with a letter or digit"),
        ("a*b", 1, "a key may contain only letters, digits, '-', '_' and '.', found '*'"),
        ("k\u00e9y", 1, "found '\u00e9'"),
        ("a" * 64, 63, "a key is 64 characters long, the limit is 63"),
        ("a/b/c", 3, "a key may contain at most one '/'"),
        ("/a", 0, "the key prefix (before '/') is empty"),
        ("a/", 2, "the name after '/' is empty"),
        ("Example.com/a", 0, "must be a DNS subdomain: lowercase letters, digits"),
        ("ex_ample.com/a", 2, "found '_'"),
        ("example..com/a", 8, "parts start and end with a lowercase letter or digit"),
        ("-example.com/a", 0, "parts start and end"),
        ("example.com-/a", 11, "parts start and end"),
        ("a" * 254 + "/b", 253, "is 254 characters long, the limit is 253"),
        ("example.com/-a", 12, "the key name must start with a letter or digit"),
        # values
        ("a=b/c", 3, "invalid value 'b/c' for label 'a': a value may contain only"),
        ("a=-b", 2, "a value must start with a letter or digit, found '-'"),
        ("a=b.", 3, "a value must end with a letter or digit, found '.'"),
        ("a in (ok,b_)", 10, "invalid value 'b_' for label 'a'"),
        ("a=" + "v" * 64, 65, "a value is 64 characters long, the limit is 63"),
    ],
)
def test_parse_errors_point_at_the_bad_character(text: str, position: int, fragment: str) -> None:
    with pytest.raises(SelectorError) as caught:
        parse_selector(text)
    error = caught.value
    assert error.position == position
    assert error.text == text
    assert fragment in error.problem
    lines = str(error).splitlines()
    assert lines[0] == f"invalid label selector at position {position}: {error.problem}"
    assert lines[1] == "    " + text
    assert lines[2] == caret_line(text, position)


def test_error_picture_keeps_columns_for_tabs_and_newlines() -> None:
    with pytest.raises(SelectorError) as caught:
        parse_selector("a=b,\tc d")
    lines = str(caught.value).splitlines()
    assert lines[1] == "    a=b, c d"
    assert lines[2] == "           ^"
    assert caught.value.position == 7


def test_error_message_explains_the_grammar() -> None:
    with pytest.raises(SelectorError) as caught:
        parse_selector("a in x")
    assert "key in (v1,v2)" in str(caught.value)
    assert "!key (it does not)" in str(caught.value)
    assert isinstance(caught.value, KubepulseError)
    assert isinstance(caught.value, ValueError)


LABELS = {"app": "web", "env": "prod", "tier": ""}


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        ("", {}, True),
        ("", LABELS, True),
        ("app=web", LABELS, True),
        ("app=db", LABELS, False),
        ("missing=web", LABELS, False),
        ("app!=db", LABELS, True),
        ("app!=web", LABELS, False),
        ("missing!=web", LABELS, True),  # != matches objects without the label
        ("env in (prod,staging)", LABELS, True),
        ("env in (staging)", LABELS, False),
        ("missing in (prod)", LABELS, False),
        ("env notin (prod)", LABELS, False),
        ("env notin (staging)", LABELS, True),
        ("missing notin (prod)", LABELS, True),  # notin too
        ("app", LABELS, True),
        ("missing", LABELS, False),
        ("!missing", LABELS, True),
        ("!app", LABELS, False),
        ("tier=", LABELS, True),  # present and empty
        ("tier", LABELS, True),
        ("missing=", LABELS, False),  # absent is not empty
        ("tier in (,x)", LABELS, True),
        ("app=web,env=prod", LABELS, True),
        ("app=web,env=dev", LABELS, False),
        ("app=web,env notin (dev),!legacy,tier", LABELS, True),
    ],
)
def test_matches(text: str, labels: Mapping[str, str], expected: bool) -> None:
    assert parse_selector(text).matches(labels) is expected


def test_is_empty() -> None:
    assert parse_selector("").is_empty
    assert LabelSelector().is_empty
    assert not parse_selector("a").is_empty


@pytest.mark.parametrize(
    ("key", "operator", "values", "fragment"),
    [
        ("a", Operator.EQUALS, (), "'a=' needs exactly one value, got 0"),
        ("a", Operator.NOT_EQUALS, ("x", "y"), "'a!=' needs exactly one value, got 2"),
        ("a", Operator.IN, (), "'a in' needs at least one value, got none"),
        ("a", Operator.NOT_IN, (), "'a notin' needs at least one value"),
        ("a", Operator.EXISTS, ("x",), "an existence test on 'a' takes no values"),
        ("a", Operator.DOES_NOT_EXIST, ("x",), "takes no values"),
        ("", Operator.EXISTS, (), "invalid label key '': the key is empty"),
        ("a b", Operator.EXISTS, (), "invalid label key 'a b'"),
        ("a", Operator.EQUALS, ("x y",), "invalid value 'x y' for label 'a'"),
    ],
)
def test_requirement_validates_when_built(
    key: str, operator: Operator, values: tuple[str, ...], fragment: str
) -> None:
    with pytest.raises(SelectorError) as caught:
        Requirement(key, operator, frozenset(values))
    assert fragment in str(caught.value)
    assert caught.value.position is None


def test_requirement_stores_any_iterable_as_frozenset() -> None:
    requirement = Requirement("env", Operator.IN, ["b", "a", "b"])  # type: ignore[arg-type]
    assert requirement.values == frozenset({"a", "b"})
    assert str(requirement) == "env in (a,b)"


def test_from_match_labels() -> None:
    selector = LabelSelector.from_match_labels({"tier": "web", "app": "shop"})
    assert str(selector) == "app=shop,tier=web"
    assert selector.matches({"app": "shop", "tier": "web", "extra": "x"})
    assert not selector.matches({"app": "shop"})
    assert LabelSelector.from_match_labels({}).is_empty


@pytest.mark.parametrize(
    ("api_selector", "canonical"),
    [
        ({}, ""),
        ({"matchLabels": None, "matchExpressions": None}, ""),
        ({"matchLabels": {"app": "web"}}, "app=web"),
        (
            {
                "matchLabels": {"app": "web"},
                "matchExpressions": [
                    {"key": "env", "operator": "In", "values": ["prod", "staging"]},
                    {"key": "track", "operator": "NotIn", "values": ["canary"]},
                    {"key": "owner", "operator": "Exists"},
                    {"key": "legacy", "operator": "DoesNotExist", "values": []},
                ],
            },
            "app=web,env in (prod,staging),!legacy,owner,track notin (canary)",
        ),
    ],
)
def test_from_api(api_selector: Mapping[str, object], canonical: str) -> None:
    selector = LabelSelector.from_api(api_selector)
    assert str(selector) == canonical
    assert selector == parse_selector(canonical)


@pytest.mark.parametrize(
    ("api_selector", "fragment"),
    [
        (
            {"matchExpressions": [{"key": "env", "operator": "Equals", "values": ["a"]}]},
            "matchExpressions[0].operator 'Equals' is not a label selector operator; "
            "use one of In, NotIn, Exists, DoesNotExist",
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "Exists"}, {"key": "b"}]},
            "matchExpressions[1].operator None is not a label selector operator",
        ),
        (
            {"matchExpressions": [{"key": "env", "operator": "In"}]},
            "matchExpressions[0]: operator In needs a non-empty values list",
        ),
        (
            {"matchExpressions": [{"key": "env", "operator": "Exists", "values": ["x"]}]},
            "matchExpressions[0]: operator Exists takes no values; remove values ['x']",
        ),
        (
            {"matchExpressions": [{"operator": "Exists"}]},
            "matchExpressions[0].key must be a label key string, got None",
        ),
        (
            {"matchExpressions": [{"key": "Bad Key", "operator": "Exists"}]},
            "matchExpressions[0]: invalid label key 'Bad Key'",
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "In", "values": "x"}]},
            "matchExpressions[0].values must be a list of strings, got 'x'",
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "In", "values": [1]}]},
            "matchExpressions[0].values must be a list of strings, got 1",
        ),
        ({"matchExpressions": ["a=b"]}, "matchExpressions[0] must be an object"),
        ({"matchExpressions": "a=b"}, "matchExpressions must be a list"),
        ({"matchLabels": ["a"]}, "matchLabels must be a mapping of label keys to values"),
        ({"matchLabels": {"a": 1}}, "matchLabels must map label keys to string values"),
        ({"matchLabels": {"a": "b c"}}, "matchLabels: invalid value 'b c' for label 'a'"),
        ({"matchLabel": {"a": "b"}}, "unknown field(s) ['matchLabel']"),
    ],
)
def test_from_api_errors_name_the_field(api_selector: Mapping[str, object], fragment: str) -> None:
    with pytest.raises(SelectorError) as caught:
        LabelSelector.from_api(api_selector)
    assert fragment in str(caught.value)
    assert caught.value.position is None


def test_without_drops_keys() -> None:
    selector = parse_selector("app=web,env in (prod),!legacy")
    assert str(selector.without({"env", "legacy", "absent"})) == "app=web"
    assert selector.without(()) == selector


RESERVED = "kubepulse.io/"


@pytest.mark.parametrize(
    ("text", "remaining", "options"),
    [
        ("", "", {}),
        ("app=web", "app=web", {}),
        (
            "kubepulse.io/window=5m,app=web",
            "app=web",
            {"kubepulse.io/window": "5m"},
        ),
        (
            "kubepulse.io/window==5m, kubepulse.io/aggregation in (p95), pod!=x",
            "pod!=x",
            {"kubepulse.io/window": "5m", "kubepulse.io/aggregation": "p95"},
        ),
        (
            "kubepulse.io/window=5m,kubepulse.io/window=5m",
            "",
            {"kubepulse.io/window": "5m"},
        ),
        # a prefix match, not a substring one
        ("example.com/kubepulse.io=x", "example.com/kubepulse.io=x", {}),
    ],
)
def test_split_reserved(text: str, remaining: str, options: dict[str, str]) -> None:
    selector, found = parse_selector(text).split_reserved(RESERVED)
    assert str(selector) == remaining
    assert found == options


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("kubepulse.io/window!=5m", "uses the reserved key 'kubepulse.io/window' as a filter"),
        ("kubepulse.io/window in (1m,5m)", "give them one value as 'kubepulse.io/window=value'"),
        ("kubepulse.io/window notin (1m)", "'kubepulse.io/window=value'"),
        ("kubepulse.io/window", "'kubepulse.io/window' uses the reserved key"),
        ("!kubepulse.io/window", "'!kubepulse.io/window' uses the reserved key"),
        (
            "kubepulse.io/window=1m,kubepulse.io/window=5m",
            "the option 'kubepulse.io/window' is given twice, as '1m' and '5m'; give it once",
        ),
    ],
)
def test_split_reserved_refuses_options_that_are_not_key_value(text: str, fragment: str) -> None:
    with pytest.raises(SelectorError) as caught:
        parse_selector(text).split_reserved(RESERVED)
    assert fragment in str(caught.value)
