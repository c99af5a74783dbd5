"""The playbook document: parsed and checked here, and nowhere else.

The format is the original Medic's (docs/remediation.md): ``name``,
``description``, ``trigger: {service_pattern, consecutive_failures}``,
``approval`` (``none | required | timeout:Xm``), ``version`` and ``steps``,
each step a ``name``, a ``type`` and the fields of its type. The document is
read with PyYAML's ``safe_load`` semantics (no tags that build objects); the
node tree PyYAML composes alongside gives each problem its line, so every
error says where it is (``line 9, steps[1].url: ...``). All problems of a
document are reported at once.

The parsed playbook is kept as plain JSON (``definition``) in the database, so
an execution carries the playbook it started with.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

STEP_TYPES = ("webhook", "script", "wait", "condition")
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
CONDITION_CHECKS = ("heartbeat_received",)
ON_FAILURE = ("fail", "continue", "escalate")
MAX_NAME_LENGTH = 255
MAX_STEPS = 50
MAX_STEP_SECONDS = 3600          # a webhook's, script's or condition's timeout
MAX_WAIT_SECONDS = 24 * 3600
MAX_APPROVAL_MINUTES = 7 * 24 * 60
SCRIPT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
DURATION = re.compile(r"^(\d+)\s*(s|m|h)?$")
VARIABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

STEP_FIELDS = {
    "webhook": {"url", "method", "headers", "body", "success_codes", "timeout"},
    "script": {"script", "script_name", "parameters", "timeout"},
    "wait": {"duration"},
    "condition": {"check", "timeout", "on_failure", "parameters"},
}
TOP_LEVEL_KNOWN = {"name", "description", "trigger", "approval", "version", "steps"}


@dataclass(frozen=True)
class Problem:
    line: int      # 1-based; 0: none
    field: str     # "steps[1].url"; "" for the document
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line else "document"
        return f"{where}, {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class PlaybookInvalid(ValueError):
    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


@dataclass(frozen=True)
class Playbook:
    name: str
    description: str
    approval: str                      # none | required | timeout
    approval_timeout_minutes: int | None
    version: int
    service_pattern: str | None
    consecutive_failures: int
    steps: list[dict[str, Any]] = field(default_factory=list)

    def definition(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "approval": self.approval,
                "approval_timeout_minutes": self.approval_timeout_minutes, "version": self.version,
                "service_pattern": self.service_pattern,
                "consecutive_failures": self.consecutive_failures, "steps": self.steps}


def parse_duration(value: Any) -> int:
    """Seconds of ``30``, ``"30s"``, ``"5m"``, ``"1h"``; ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30s, 5m or 1h")
    if isinstance(value, int):
        return value
    match = DURATION.match(str(value).strip().lower())
    if not match:
        raise ValueError(f"invalid duration {value!r}: expected a number with an optional unit "
                         "(s, m or h), e.g. 30s, 5m, 1h")
    return int(match.group(1)) * {"s": 1, "m": 60, "h": 3600}[match.group(2) or "s"]


def parse_approval(value: Any) -> tuple[str, int | None]:
    """("none" | "required" | "timeout", minutes); ValueError naming what is accepted."""
    text = str(value).strip().lower() if isinstance(value, str) else None
    if text in ("none", "required"):
        return text, None
    if text is not None and text.startswith("timeout:"):
        match = re.match(r"^(\d+)m$", text[len("timeout:"):].strip())
        if match and 0 < int(match.group(1)) <= MAX_APPROVAL_MINUTES:
            return "timeout", int(match.group(1))
        raise ValueError(f"invalid timeout {value!r}: expected 'timeout:Xm' with X minutes, "
                         f"1 to {MAX_APPROVAL_MINUTES}")
    raise ValueError(f"invalid approval {value!r}: must be 'none', 'required' or 'timeout:Xm'")


class _Lines:
    """The line of each field, from the node tree PyYAML composed."""

    def __init__(self, root: yaml.Node | None):
        self.root = root

    def of(self, *path: str | int) -> int:
        node = self.root
        line = node.start_mark.line + 1 if node is not None else 0
        for key in path:
            child = None
            if isinstance(node, yaml.MappingNode) and isinstance(key, str):
                for k, v in node.value:
                    if isinstance(k, yaml.ScalarNode) and k.value == key:
                        child = v
                        break
            elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
                child = node.value[key]
            if child is None:
                return line
            node = child
            line = node.start_mark.line + 1
        return line


def _path(*parts: str | int) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


class _Checker:
    def __init__(self, lines: _Lines):
        self.lines = lines
        self.problems: list[Problem] = []

    def problem(self, message: str, *path: str | int) -> None:
        self.problems.append(Problem(self.lines.of(*path), _path(*path), message))

    def text(self, data: dict, key: str, *path: str | int, required: bool = False,
             default: str = "", max_length: int = MAX_NAME_LENGTH) -> str:
        value = data.get(key)
        if value is None or value == "":
            if required:
                self.problem(f"`{key}` is required", *path, key)
            return default
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            self.problem(f"`{key}` must be a string", *path, key)
            return default
        value = str(value)
        if len(value) > max_length:
            self.problem(f"`{key}` must be at most {max_length} characters", *path, key)
        return value

    def duration(self, data: dict, key: str, default: str, maximum: int, *path: str | int,
                 required: bool = False) -> int:
        raw = data.get(key)
        if raw is None or raw == "":
            if required:
                self.problem(f"`{key}` is required (e.g. 30s, 5m)", *path, key)
                return 0
            raw = default
        try:
            seconds = parse_duration(raw)
        except ValueError as exc:
            self.problem(str(exc), *path, key)
            return 0
        if not 0 < seconds <= maximum:
            self.problem(f"`{key}` must be more than 0 s and at most {maximum} s", *path, key)
        return seconds

    def mapping(self, data: dict, key: str, *path: str | int) -> dict:
        value = data.get(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.problem(f"`{key}` must be a mapping", *path, key)
            return {}
        return value


def _scalar_mapping(checker: _Checker, value: dict, *path: str | int) -> dict[str, Any]:
    """A mapping of names to strings, numbers or booleans."""
    out = {}
    for k, v in value.items():
        if not isinstance(k, str) or not VARIABLE_NAME.match(k):
            checker.problem(f"name {k!r} must be letters, digits and _ (not starting with a digit)",
                            *path, str(k))
        elif isinstance(v, (dict, list)) or v is None:
            checker.problem("must be a string, number or boolean", *path, k)
        else:
            out[k] = v
    return out


def _webhook(checker: _Checker, step: dict, base: tuple, out: dict) -> None:
    url = checker.text(step, "url", *base, required=True, max_length=2048)
    if url and not url.startswith(("http://", "https://", "${")):
        checker.problem("URL must start with http://, https://, or be a variable", *base, "url")
    out["url"] = url
    method = checker.text(step, "method", *base, default="POST").upper()
    if method not in METHODS:
        checker.problem(f"invalid HTTP method {method}: must be one of {', '.join(METHODS)}", *base, "method")
    out["method"] = method
    headers = {}
    for name, value in checker.mapping(step, "headers", *base).items():
        if not isinstance(name, str) or not HEADER_NAME.match(name):
            checker.problem(f"invalid header name {name!r}", *base, "headers")
        elif isinstance(value, (dict, list)) or value is None or "\n" in str(value) or "\r" in str(value):
            checker.problem("a header value must be one line of text", *base, "headers", name)
        else:
            headers[name] = str(value)
    out["headers"] = headers
    body = step.get("body")
    if body is not None and not isinstance(body, dict):
        checker.problem("`body` must be a mapping", *base, "body")
        body = None
    out["body"] = body
    codes = step.get("success_codes", [200, 201, 202])
    if (not isinstance(codes, list) or not codes
            or not all(isinstance(c, int) and not isinstance(c, bool) and 100 <= c <= 599 for c in codes)):
        checker.problem("`success_codes` must be a list of HTTP status codes (100-599)", *base, "success_codes")
        codes = []
    out["success_codes"] = codes
    out["timeout_seconds"] = checker.duration(step, "timeout", "30s", MAX_STEP_SECONDS, *base)


def _script(checker: _Checker, step: dict, base: tuple, out: dict) -> None:
    key = "script" if "script" in step else "script_name"
    name = checker.text(step, key, *base)
    if not name:
        checker.problem("script name is required (use the `script` field)", *base, "script")
    elif not SCRIPT_NAME.match(name):
        checker.problem("a script is named by its file in the scripts directory: letters, digits, "
                        "'.', '_' and '-', no path", *base, key)
    out["script"] = name
    out["parameters"] = _scalar_mapping(checker, checker.mapping(step, "parameters", *base),
                                        *base, "parameters")
    out["timeout_seconds"] = checker.duration(step, "timeout", "60s", MAX_STEP_SECONDS, *base)


def _wait(checker: _Checker, step: dict, base: tuple, out: dict) -> None:
    out["duration_seconds"] = checker.duration(step, "duration", "", MAX_WAIT_SECONDS, *base, required=True)


def _condition(checker: _Checker, step: dict, base: tuple, out: dict) -> None:
    check = checker.text(step, "check", *base).lower()
    if not check:
        checker.problem("condition check is required (e.g. heartbeat_received)", *base, "check")
    elif check not in CONDITION_CHECKS:
        checker.problem(f"invalid condition check {check!r}: must be one of {', '.join(CONDITION_CHECKS)}",
                        *base, "check")
    out["check"] = check
    out["timeout_seconds"] = checker.duration(step, "timeout", "5m", MAX_STEP_SECONDS, *base)
    on_failure = checker.text(step, "on_failure", *base, default="fail").lower()
    if on_failure not in ON_FAILURE:
        checker.problem(f"invalid on_failure {on_failure!r}: must be one of {', '.join(ON_FAILURE)}",
                        *base, "on_failure")
    out["on_failure"] = on_failure
    out["parameters"] = _scalar_mapping(checker, checker.mapping(step, "parameters", *base),
                                        *base, "parameters")


_STEP_PARSERS = {"webhook": _webhook, "script": _script, "wait": _wait, "condition": _condition}


def _steps(checker: _Checker, data: dict) -> list[dict[str, Any]]:
    steps = data.get("steps")
    if not steps:
        checker.problem("a playbook needs at least one step", "steps")
        return []
    if not isinstance(steps, list):
        checker.problem("`steps` must be a list", "steps")
        return []
    if len(steps) > MAX_STEPS:
        checker.problem(f"a playbook has at most {MAX_STEPS} steps", "steps")
    parsed, names = [], set()
    for index, step in enumerate(steps):
        base = ("steps", index)
        if not isinstance(step, dict):
            checker.problem("a step must be a mapping with `name` and `type`", *base)
            continue
        name = checker.text(step, "name", *base, required=True)
        if name and name in names:
            checker.problem(f"duplicate step name {name!r}", *base, "name")
        names.add(name)
        kind = checker.text(step, "type", *base, required=True).lower()
        if kind and kind not in STEP_TYPES:
            checker.problem(f"invalid step type {kind!r}: must be one of {', '.join(STEP_TYPES)}", *base, "type")
            continue
        if not kind:
            continue
        for key in step:
            if key not in ("name", "type") and key not in STEP_FIELDS[kind]:
                checker.problem(f"unknown field {key!r} for a {kind} step (it takes "
                                f"{', '.join(sorted(STEP_FIELDS[kind] - {'script_name'}))})", *base, str(key))
        out: dict[str, Any] = {"name": name, "type": kind}
        _STEP_PARSERS[kind](checker, step, base, out)
        parsed.append(out)
    return parsed


def _trigger(checker: _Checker, data: dict) -> tuple[str | None, int]:
    trigger = data.get("trigger")
    if trigger is None:
        return None, 1
    if not isinstance(trigger, dict):
        checker.problem("`trigger` must be a mapping with service_pattern and consecutive_failures", "trigger")
        return None, 1
    for key in trigger:
        if key not in ("service_pattern", "consecutive_failures"):
            checker.problem(f"unknown field {key!r} (the trigger takes service_pattern and "
                            "consecutive_failures)", "trigger", str(key))
    pattern = checker.text(trigger, "service_pattern", "trigger", required=True)
    failures = trigger.get("consecutive_failures", 1)
    if not isinstance(failures, int) or isinstance(failures, bool) or not 1 <= failures <= 1000:
        checker.problem("`consecutive_failures` must be an integer from 1 to 1000",
                        "trigger", "consecutive_failures")
        failures = 1
    return pattern or None, failures


def parse(document: str) -> Playbook:
    """The playbook of a document; PlaybookInvalid listing every problem otherwise."""
    if not document or not document.strip():
        raise PlaybookInvalid([Problem(0, "", "the playbook document is empty")])
    try:
        root = yaml.compose(document, Loader=yaml.SafeLoader)
        data = yaml.safe_load(document)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        reason = getattr(exc, "problem", None) or "not valid YAML"
        raise PlaybookInvalid([Problem(mark.line + 1 if mark else 0, "", f"invalid YAML: {reason}")]) from None
    checker = _Checker(_Lines(root))
    if not isinstance(data, dict):
        checker.problem("a playbook must be a YAML mapping (name, steps, ...)")
        raise PlaybookInvalid(checker.problems)
    name = checker.text(data, "name", required=True)
    description = checker.text(data, "description", max_length=4096)
    try:
        approval, minutes = parse_approval(data.get("approval", "none"))
    except ValueError as exc:
        checker.problem(str(exc), "approval")
        approval, minutes = "none", None
    version = data.get("version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        checker.problem("`version` must be an integer >= 1", "version")
        version = 1
    pattern, failures = _trigger(checker, data)
    steps = _steps(checker, data)
    if checker.problems:
        raise PlaybookInvalid(checker.problems)
    return Playbook(name=name, description=description, approval=approval,
                    approval_timeout_minutes=minutes, version=version, service_pattern=pattern,
                    consecutive_failures=failures, steps=steps)


def validate(document: str) -> list[Problem]:
    """Every problem of a document; empty when it is a valid playbook."""
    try:
        parse(document)
    except PlaybookInvalid as exc:
        return exc.problems
    return []
