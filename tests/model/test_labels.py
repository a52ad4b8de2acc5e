"""Label selectors: a routing table over all six operators and match_labels, the words of
``explain``, validation, the ``labels`` shorthand and ``parse_labels``."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from worldtree.model.labels import LabelSelector, parse_labels

AGENTS: dict[str, dict[str, str]] = {
    "big-gpu": {"os": "linux", "env": "production", "gpu": "true", "cpu-cores": "16"},
    "small": {"os": "linux", "env": "staging", "cpu-cores": "4"},
    "mac": {"os": "darwin", "env": "dev", "cpu-cores": "many"},
    "bare": {},
}


def sel(**kwargs: Any) -> LabelSelector:
    return LabelSelector.model_validate(kwargs)


def expr(key: str, operator: str, *values: Any) -> dict[str, Any]:
    return {"key": key, "operator": operator, **({"values": list(values)} if values else {})}


# selector -> the set of agents it routes to
ROUTING: list[tuple[str, LabelSelector, set[str]]] = [
    ("empty", sel(), {"big-gpu", "small", "mac", "bare"}),
    ("match_labels", sel(match_labels={"os": "linux"}), {"big-gpu", "small"}),
    ("match_labels two", sel(match_labels={"os": "linux", "env": "staging"}), {"small"}),
    ("IN", sel(match_expressions=[expr("env", "IN", "staging", "production")]), {"big-gpu", "small"}),
    ("NOT_IN (missing key holds)", sel(match_expressions=[expr("env", "NOT_IN", "production")]),
     {"small", "mac", "bare"}),
    ("EXISTS", sel(match_expressions=[expr("gpu", "EXISTS")]), {"big-gpu"}),
    ("NOT_EXISTS", sel(match_expressions=[expr("gpu", "NOT_EXISTS")]), {"small", "mac", "bare"}),
    ("GT numeric, not string", sel(match_expressions=[expr("cpu-cores", "GT", "8")]), {"big-gpu"}),
    ("GT vs '10' < '9' as strings", sel(match_expressions=[expr("cpu-cores", "GT", "9")]), {"big-gpu"}),
    ("LT", sel(match_expressions=[expr("cpu-cores", "LT", 8)]), {"small"}),
    ("range GT+LT on one key", sel(match_expressions=[expr("cpu-cores", "GT", 2), expr("cpu-cores", "LT", "5.5")]),
     {"small"}),
    ("AND of all terms", sel(match_labels={"os": "linux"}, match_expressions=[
        expr("gpu", "exists"), expr("cpu-cores", "gt", "8")]), {"big-gpu"}),
    ("lower case and proto spelling", sel(match_expressions=[expr("env", "label_operator_not_in", "dev"),
                                                             expr("os", "In", "linux")]), {"big-gpu", "small"}),
    ("shorthand labels", LabelSelector.from_labels({"gpu": True}), {"big-gpu"}),
]


@pytest.mark.parametrize(("name", "selector", "expected"), ROUTING, ids=[r[0] for r in ROUTING])
def test_routing_table(name: str, selector: LabelSelector, expected: set[str]) -> None:
    assert {agent for agent, labels in AGENTS.items() if selector.matches(labels)} == expected
    # the same object after a JSON round trip routes the same way (it travels in the graph)
    again = LabelSelector.model_validate_json(selector.model_dump_json())
    assert again == selector


EXPLAIN: list[tuple[LabelSelector, str, str | None]] = [
    (sel(match_expressions=[expr("gpu", "EXISTS")]), "small", "gpu: missing"),
    (sel(match_expressions=[expr("cpu-cores", "GT", "8")]), "small", "cpu-cores: 4 is not > 8"),
    (sel(match_expressions=[expr("cpu-cores", "LT", "8")]), "big-gpu", "cpu-cores: 16 is not < 8"),
    (sel(match_expressions=[expr("env", "IN", "production")]), "small", "env: staging is not in [production]"),
    (sel(match_expressions=[expr("cpu-cores", "GT", "8")]), "mac", 'cpu-cores: "many" is not a number'),
    (sel(match_expressions=[expr("cpu-cores", "GT", "8")]), "bare", "cpu-cores: missing"),
    (sel(match_expressions=[expr("env", "NOT_IN", "production", "staging")]), "small",
     "env: staging is in excluded [production, staging]"),
    (sel(match_expressions=[expr("gpu", "NOT_EXISTS")]), "big-gpu", "gpu: present (true), must be absent"),
    (sel(match_labels={"env": "production"}), "small", "env: staging is not production"),
    (sel(match_labels={"env": "production"}), "bare", "env: missing"),
    # the FIRST failing term: match_labels, then expressions in the order written
    (sel(match_labels={"os": "linux"}, match_expressions=[expr("gpu", "EXISTS"), expr("cpu-cores", "GT", "8")]),
     "small", "gpu: missing"),
    (sel(match_labels={"os": "linux"}, match_expressions=[expr("gpu", "EXISTS")]), "mac", "os: darwin is not linux"),
    (sel(match_labels={"os": "linux"}), "big-gpu", None),
]


@pytest.mark.parametrize(("selector", "agent", "words"), EXPLAIN)
def test_explain_names_the_first_failing_term(selector: LabelSelector, agent: str, words: str | None) -> None:
    assert selector.explain(AGENTS[agent]) == words


@pytest.mark.parametrize(("data", "message"), [
    ({"match_expressions": [expr("a", "GTE", "1")]}, "unknown operator 'GTE'; use one of IN, NOT_IN"),
    ({"match_expressions": [expr("a", "IN")]}, "a: IN needs `values`"),
    ({"match_expressions": [expr("a", "NOT_IN")]}, "a: NOT_IN needs `values`"),
    ({"match_expressions": [expr("a", "GT")]}, "a: GT needs exactly one value"),
    ({"match_expressions": [expr("a", "LT", "1", "2")]}, "a: LT needs exactly one value"),
    ({"match_expressions": [expr("a", "EXISTS", "x")]}, "a: EXISTS takes no `values`"),
    ({"match_expressions": [expr("a", "NOT_EXISTS", "x")]}, "a: NOT_EXISTS takes no `values`"),
    ({"match_expressions": [expr("a", "GT", "eight")]}, "GT compares numbers, and 'eight' is not a number"),
    ({"match_expressions": [expr("a", "LT", "nan")]}, "'nan' is not a number"),
    ({"match_labels": {"a": "1"}, "match_expressions": [expr("a", "EXISTS")]},
     "key 'a' is in both match_labels and match_expressions"),
    ({"match_expressions": [expr("a", "IN", "1"), expr("a", "in", "2")]}, "key 'a' appears twice with operator IN"),
    ({"match_labels": {"a": {"b": 1}}}, "must be a string, number or boolean"),
    ({"match_expressions": [{"key": "a", "operator": "IN", "values": ["x"], "extra": 1}]},
     "unknown key `extra`; an expression takes key, operator, values"),
    ({"match_expressions": [{"key": "a", "operater": "IN"}]}, "unknown key `operater`; did you mean `operator`?"),
    ({"match_expression": []}, "unknown key `match_expression`; did you mean `match_expressions`?"),
    ({"match_labels": {"a": None}}, "the value of 'a' must be a string, number or boolean, not null"),
    ({"match_expressions": [expr("gpu\x1b[31m", "EXISTS")]}, "label key 'gpu\\x1b[31m' is not valid"),
    ({"match_labels": {"a b": "x"}}, "label key 'a b' is not valid"),
    ({"match_labels": {"env": "pro duction"}}, "which no agent's label can hold"),
    ({"match_expressions": [expr("env", "IN", "a\nb")]}, "which no agent's label can hold"),
])
def test_bad_selectors_are_refused(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as info:
        LabelSelector.model_validate(data)
    assert message in str(info.value)


def test_yaml_scalars_become_label_strings() -> None:
    s = sel(match_labels={"gpu": True, "cores": 8}, match_expressions=[expr("x", "IN", 1, False)])
    assert s.match_labels == {"gpu": "true", "cores": "8"}
    assert s.match_expressions[0].values == ["1", "false"]
    assert s.describe() == "gpu=true, cores=8, x IN [1, false]"


def test_parse_labels() -> None:
    assert parse_labels("os=linux, gpu=true,cpu-cores=16,tier=") == {
        "os": "linux", "gpu": "true", "cpu-cores": "16", "tier": ""}
    assert parse_labels("") == {}


@pytest.mark.parametrize(("text", "message"), [
    ("os", "label 'os' has no '='"),
    ("=linux", "label key '' is not valid"),
    ("-os=linux", "label key '-os' is not valid"),
    ("os=linux,os=darwin", "label 'os' is given twice"),
    ("os=li nux", "holds spaces or control characters"),
    ("os=a\x1bb", "holds spaces or control characters"),
])
def test_parse_labels_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_labels(text)


def test_label_errors_are_usage_errors() -> None:
    """Raised directly (agent CLI, UpdateLabels) they render as exit 2 / HTTP 400, not as crashes."""
    from worldtree.errors import UsageError

    with pytest.raises(UsageError, match="label key 'a b' is not valid"):
        parse_labels("a b=c")


@pytest.mark.parametrize("value", ["1_000", "٣", "\uff11\uff16", "0x10", "inf", "-nan", "1e400", ""])
def test_gt_numbers_are_ascii_decimals(value: str) -> None:
    """float() alone reads ``1_000`` and other scripts' digits (``٣`` is 3.0): a GT bound like that
    is refused, and an agent label like that is not a number."""
    with pytest.raises(ValidationError, match="is not a number"):
        sel(match_expressions=[expr("cpu", "GT", value)])
    if value:
        assert sel(match_expressions=[expr("cpu", "GT", "2")]).explain({"cpu": value}) == \
            f'cpu: "{value}" is not a number'
    assert sel(match_expressions=[expr("cpu", "GT", "-1.5e1")]).explain({"cpu": " +.5 "}) is None


def test_empty_and_comma_values_are_quoted_in_words() -> None:
    """``[]`` read as no values at all, and ``[a,b]`` as two of them."""
    selector = sel(match_expressions=[expr("tier", "IN", ""), expr("zone", "NOT_IN", "a,b")])
    assert selector.describe() == 'tier IN [""], zone NOT_IN ["a,b"]'
    assert selector.explain({"tier": "gold"}) == 'tier: gold is not in [""]'
    assert selector.explain({"tier": "", "zone": "a,b"}) == 'zone: "a,b" is in excluded ["a,b"]'
