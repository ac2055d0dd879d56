"""The IoT rules engine, for the SQL subset template.yaml uses.

Supported (anything else is refused when the stack starts, so the template
cannot quietly use SQL that only the cloud understands):
  SELECT *  |  item [AS name], ...   where item is *, a payload field,
      encode(*, 'base64'), topic(n), clientid(), principal(), timestamp()
  FROM 'topic/filter/+/#'
  [WHERE field|function <op> literal [AND ...]]   with =, <>, !=, <, <=, >, >=
Basic Ingest: `$aws/rules/<rule>/...` reaches only <rule>, which sees the topic
without that prefix. principal() is the id of the certificate the publishing connection was
made with (the SHA-256 of its DER, as IoT Core's certificate id), which mosquitto stamps on each
Basic Ingest publish (chargenet_local.broker, the principal plugin); undefined (None) for a
publish it did not stamp. Hand-written: no library evaluates IoT SQL outside AWS.
"""

from __future__ import annotations

import base64
import json
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

BASIC_INGEST_PREFIX = "$aws/rules/"

_STATEMENT = re.compile(
    r"^\s*SELECT\s+(?P<select>.+?)\s+FROM\s+'(?P<topic>[^']+)'(?:\s+WHERE\s+(?P<where>.+?))?\s*$",
    re.IGNORECASE | re.DOTALL,
)
_ITEM = re.compile(r"^(?P<expr>.+?)(?:\s+AS\s+(?P<alias>[A-Za-z_][A-Za-z0-9_]*))?$", re.IGNORECASE)
_CONDITION = re.compile(r"^(?P<left>.+?)\s*(?P<op><>|!=|<=|>=|=|<|>)\s*(?P<right>.+)$")
_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    "<>": operator.ne,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


class UnsupportedSql(ValueError):
    pass


@dataclass(frozen=True)
class Message:
    topic: str  # as the rule sees it (Basic Ingest prefix removed)
    payload: bytes
    client_id: str
    timestamp_ms: int
    principal: str | None = None  # the publisher's certificate id, when the broker said


Expression = Callable[[Message, Any], Any]


def topic_matches(topic_filter: str, topic: str) -> bool:
    filter_levels, topic_levels = topic_filter.split("/"), topic.split("/")
    for index, level in enumerate(filter_levels):
        if level == "#":
            return True
        if index >= len(topic_levels) or (level != "+" and level != topic_levels[index]):
            return False
    return len(filter_levels) == len(topic_levels)


def _split_top_level(text: str, separator: str = ",") -> list[str]:
    parts, depth, current = [], 0, ""
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == separator and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += char
    return [*parts, current.strip()]


def _parse_json(message: Message) -> Any:
    try:
        return json.loads(message.payload)
    except ValueError:
        return None


def _expression(text: str) -> Expression:
    text = text.strip()
    if m := re.fullmatch(r"topic\((\d+)\)", text, re.IGNORECASE):
        level = int(m[1])
        return lambda msg, _doc: (msg.topic.split("/") + [None] * level)[level - 1]
    if re.fullmatch(r"clientid\(\)", text, re.IGNORECASE):
        return lambda msg, _doc: msg.client_id
    if re.fullmatch(r"principal\(\)", text, re.IGNORECASE):
        return lambda msg, _doc: msg.principal
    if re.fullmatch(r"timestamp\(\)", text, re.IGNORECASE):
        return lambda msg, _doc: msg.timestamp_ms
    if re.fullmatch(r"encode\(\s*\*\s*,\s*'base64'\s*\)", text, re.IGNORECASE):
        return lambda msg, _doc: base64.b64encode(msg.payload).decode()
    if m := re.fullmatch(r"'([^']*)'", text):
        literal = m[1]
        return lambda _msg, _doc: literal
    if re.fullmatch(r"-?\d+(\.\d+)?", text):
        number = json.loads(text)
        return lambda _msg, _doc: number
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*", text):
        path = text.split(".")
        return lambda _msg, doc: _lookup(doc, path)
    raise UnsupportedSql(f"expression not supported locally: {text!r}")


def _lookup(doc: Any, path: list[str]) -> Any:
    for key in path:
        if not isinstance(doc, dict):
            return None
        doc = doc.get(key)
    return doc


@dataclass(frozen=True)
class Rule:
    name: str
    topic_filter: str
    project: Callable[[Message], dict[str, Any] | None]

    @classmethod
    def parse(cls, name: str, sql: str) -> Rule:
        statement = _STATEMENT.match(sql)
        if not statement:
            raise UnsupportedSql(f"rule {name}: not a SELECT ... FROM '...' statement")
        items = [_ITEM.match(item) for item in _split_top_level(statement["select"])]
        projections = []
        for item in items:
            assert item is not None
            expr, alias = item["expr"].strip(), item["alias"]
            if expr == "*":
                projections.append((None, None))
                continue
            projections.append((alias or expr.split(".")[-1], _expression(expr)))
        conditions = [
            _condition(c) for c in re.split(r"\s+AND\s+", statement["where"] or "", flags=re.I) if c
        ]

        def project(message: Message) -> dict[str, Any] | None:
            doc = _parse_json(message)
            if not all(cond(message, doc) for cond in conditions):
                return None
            out: dict[str, Any] = {}
            for alias, expression in projections:
                if expression is None:
                    if not isinstance(doc, dict):
                        return None  # like IoT: SELECT * needs a JSON object payload
                    out.update(doc)
                else:
                    out[alias] = expression(message, doc)
            return out

        return cls(name, statement["topic"], project)

    def evaluate(self, message: Message) -> dict[str, Any] | None:
        """The action payload, or None when the topic or WHERE clause does not match."""
        if not topic_matches(self.topic_filter, message.topic):
            return None
        return self.project(message)


def _condition(text: str) -> Callable[[Message, Any], bool]:
    m = _CONDITION.match(text.strip())
    if not m:
        raise UnsupportedSql(f"condition not supported locally: {text!r}")
    left, right, compare = _expression(m["left"]), _expression(m["right"]), _OPERATORS[m["op"]]

    def check(message: Message, doc: Any) -> bool:
        try:
            return bool(compare(left(message, doc), right(message, doc)))
        except TypeError:
            return False

    return check


def route(rules: list[Rule], topic: str) -> tuple[list[Rule], str]:
    """The rules a publish reaches, and the topic they see."""
    if topic.startswith(BASIC_INGEST_PREFIX):
        rule_name, _, rest = topic[len(BASIC_INGEST_PREFIX) :].partition("/")
        return [r for r in rules if r.name == rule_name], rest
    return rules, topic
