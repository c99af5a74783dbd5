"""The metric names a PromQL expression reads, and the ones a Prometheus scrape exports.

Not a PromQL parser: label matchers, strings, range and subquery brackets and the label
lists of by/without/on/ignoring/group_* are cut out, and what is left that looks like a
name and is not a function call, keyword or number is a metric name. Enough for the
expressions of Medic's dashboard and rules, which a test checks against real scrapes.
"""
from __future__ import annotations

import re

KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan", "atan2"}


def metric_names(expr: str) -> set[str]:
    expr = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'', '""', expr)
    expr = re.sub(r"\{[^}]*\}", " ", expr)
    expr = re.sub(r"\[[^\]]*\]", " ", expr)
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    names = set()
    for match in re.finditer(r"(?<![\w.$])[a-zA-Z_:][a-zA-Z0-9_:]*", expr):
        word = match.group(0)
        if word in KEYWORDS or expr[match.end():].lstrip().startswith("("):
            continue  # a keyword, a function or an aggregation
        names.add(word)
    return names


SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created"),
            "summary": ("_sum", "_count", "_created"), "gauge": ("",), "untyped": ("",), "info": ("_info",)}


def scraped_names(text: str) -> tuple[set[str], set[str]]:
    """(names with at least one sample, names a family declares) of a text-format scrape."""
    sampled, declared = set(), set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, family, kind = line.split(None, 3)
            base = family.removesuffix("_total") if kind == "counter" else family
            declared |= {base + suffix for suffix in SUFFIXES.get(kind, ("",))}
        elif line and not line.startswith("#"):
            sampled.add(re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0))
    return sampled, declared | sampled
