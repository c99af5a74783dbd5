"""The HTTP side of the ``medic`` management commands: which gateway and key to
use, one call per command with the JSON envelope unwrapped, and plain-text
tables for people.

Every answer of the gateway is ``{success, message, results}``; a failure
becomes ``ApiError`` carrying the server's message and HTTP status, which the
command layer prints to stderr with a non-zero exit code.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence
from urllib.parse import urlsplit

import requests
import wcwidth

from medic.config import Settings

DEFAULT_TIMEOUT_SECONDS = 15.0
HIDDEN = "***"

# Exit codes (documented in `medic --help` of the management commands).
EXIT_API_ERROR = 1      # the gateway answered with an error
EXIT_USAGE = 2          # bad command line, bad configuration, no API key
EXIT_UNREACHABLE = 3    # no answer from the gateway


class ApiError(Exception):
    """A command failed; ``status`` is the HTTP status when the gateway answered."""

    def __init__(self, message: str, status: int | None = None, exit_code: int = EXIT_API_ERROR):
        super().__init__(message)
        self.message = message
        self.status = status
        self.exit_code = exit_code

    def __str__(self) -> str:
        return f"{self.message} (HTTP {self.status})" if self.status else self.message


# --- where and who --------------------------------------------------------------

def gateway_url(flag: str | None, settings: Settings) -> str:
    """--url, else MEDIC_URL, else the local gateway on MEDIC_GATEWAY_PORT."""
    url = (flag or settings.cli_url or f"http://127.0.0.1:{settings.gateway_port}").strip()
    if not url.startswith(("http://", "https://")):
        raise ApiError(f"the gateway URL must start with http:// or https://, got {url!r}", exit_code=EXIT_USAGE)
    return url.rstrip("/")


def admin_key_file(settings: Settings) -> Path:
    return Path(settings.data_dir) / "admin.key"


def api_key(flag: str | None, settings: Settings) -> str:
    """--key, else MEDIC_API_KEY, else the bootstrap key `medic up` wrote to the data dir."""
    key = _find_key(flag, settings)
    if not key.isprintable() or any(c.isspace() for c in key):  # never echoed: it may be a real key
        raise ApiError("the API key contains spaces or control characters", exit_code=EXIT_USAGE)
    return key


def _find_key(flag: str | None, settings: Settings) -> str:
    if flag:
        return flag.strip()
    if settings.cli_api_key:
        return settings.cli_api_key.strip()
    path = admin_key_file(settings)
    try:
        key = path.read_text().strip()
    except FileNotFoundError:
        key = ""
    except OSError as exc:
        raise ApiError(f"cannot read the API key file {path}: {exc.strerror}", exit_code=EXIT_USAGE) from None
    if not key:
        raise ApiError(f"no API key: pass --key, set MEDIC_API_KEY, or run where {path} exists "
                       "(`medic up` writes it on first start; MEDIC_DATA_DIR moves it)", exit_code=EXIT_USAGE)
    return key


# --- the calls ------------------------------------------------------------------

class Client:
    """One gateway, one key; ``call`` returns the envelope's ``(message, results)``."""

    def __init__(self, url: str, key: str, timeout: float = DEFAULT_TIMEOUT_SECONDS):
        self.url = url
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {key}"
        self.session.headers["User-Agent"] = "medic-cli"

    def call(self, method: str, path: str, *, body: dict[str, Any] | None = None,
             params: dict[str, Any] | None = None) -> tuple[str, Any]:
        query = {k: v for k, v in (params or {}).items() if v is not None}
        prepared = self.session.prepare_request(requests.Request(method, self.url, json=body, params=query))
        # `path` is percent-encoded already (see commands._path): set after preparing, since
        # requests would decode %2E and drop a name "." or ".." as a dot segment.
        encoded_query = urlsplit(prepared.url).query
        prepared.url = self.url + path + (f"?{encoded_query}" if encoded_query else "")
        try:
            response = self.session.send(prepared, timeout=self.timeout,
                                         **self.session.merge_environment_settings(
                                             prepared.url, {}, None, None, None))
        except requests.Timeout:
            raise ApiError(f"the Medic gateway at {self.url} did not answer within {self.timeout:g} s",
                           exit_code=EXIT_UNREACHABLE) from None
        except requests.ConnectionError:
            raise ApiError(f"cannot reach the Medic gateway at {self.url}: is it running (`medic up`)? "
                           "Set --url or MEDIC_URL to point elsewhere.", exit_code=EXIT_UNREACHABLE) from None
        except requests.RequestException as exc:  # its text could quote the Authorization header
            raise ApiError(f"cannot call {self.url}: {type(exc).__name__}", exit_code=EXIT_USAGE) from None
        return _unwrap(response)

    def close(self) -> None:
        self.session.close()


def _unwrap(response: requests.Response) -> tuple[str, Any]:
    try:
        envelope = response.json()
    except ValueError:
        envelope = None
    if not isinstance(envelope, dict) or "success" not in envelope:
        raise ApiError(f"unexpected answer from {response.url} (not a Medic gateway?)", response.status_code)
    if response.status_code >= 400 or not envelope["success"]:
        message = envelope.get("message") or response.reason or "request failed"
        raise ApiError(message, response.status_code)
    return envelope.get("message") or "", envelope.get("results")


# --- secrets never shown after creation -----------------------------------------

def hide_secrets(value: Any) -> Any:
    """A copy with the secrets the API echoes back masked: a PagerDuty routing key
    in a target's config and header values (often tokens) of targets and webhooks."""
    if isinstance(value, list):
        return [hide_secrets(v) for v in value]
    if not isinstance(value, dict):
        return value
    out = {}
    for name, item in value.items():
        if name == "routing_key" and item:
            out[name] = HIDDEN
        elif name == "headers" and isinstance(item, dict):
            out[name] = {k: HIDDEN for k in item}
        else:
            out[name] = hide_secrets(item)
    return out


# --- output ---------------------------------------------------------------------

def to_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=False, default=str)


def cell(value: Any) -> str:
    """One value as a table cell: '-' for nothing, yes/no for flags, short times."""
    if value is None or value == "" or value == [] or value == {}:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ",".join(cell(v) for v in value)
    if isinstance(value, dict):
        return " ".join(f"{k}={cell(v)}" for k, v in value.items())
    text = str(value)
    if len(text) >= 20 and text[4:5] == "-" and text[10:11] == "T":  # RFC 3339 -> to the second
        return text[:10] + " " + text[11:19] + "Z"
    return text


Column = tuple[str, "str | Callable[[dict], Any]"]


def display_width(text: str) -> int:
    """Columns ``text`` takes in a terminal: 2 for a wide (CJK) character or emoji,
    0 for a combining mark (its length otherwise, e.g. with control characters)."""
    width = wcwidth.wcswidth(text)
    return width if width >= 0 else len(text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - display_width(text))


def table(rows: Sequence[dict[str, Any]], columns: Sequence[Column]) -> str:
    """Rows as left-aligned columns under upper-case headers, aligned by display width."""
    header = [name.upper() for name, _ in columns]
    body = [[cell(get(row) if callable(get) else row.get(get)) for _, get in columns] for row in rows]
    widths = [max(display_width(r[i]) for r in [header, *body]) for i in range(len(columns))]
    lines = ["  ".join(_pad(v, w) for v, w in zip(r, widths)).rstrip() for r in [header, *body]]
    return "\n".join(lines)


def record(row: dict[str, Any], fields: Iterable[str] | None = None) -> str:
    """One object as 'name: value' lines."""
    names = list(fields or row)
    width = max((len(n) for n in names), default=0)
    return "\n".join(f"{n.ljust(width)}  {cell(row.get(n))}" for n in names)
