"""Secret options of the CLI can stay off the command line (visible in `ps`):
``-`` reads the value from standard input, ``@FILE`` from a file."""
from __future__ import annotations

import io
import json

import pytest

from medic_cli.main import build_parser


def parse(*argv: str):
    return build_parser().parse_args(list(argv))


def test_secrets_from_a_file_and_from_standard_input(tmp_path, monkeypatch):
    routing_key = tmp_path / "pd.key"
    routing_key.write_text("R0UTING-key-from-file\n")
    args = parse("targets", "create", "--service-id", "1", "--routing-key", f"@{routing_key}")
    assert args.routing_key == "R0UTING-key-from-file"

    monkeypatch.setattr("sys.stdin", io.StringIO("whsec_from_stdin\n"))
    args = parse("webhooks", "create", "--url", "https://example.com/hook", "--secret", "-")
    assert args.secret == "whsec_from_stdin"

    api_key = tmp_path / "api.key"
    api_key.write_text("mdk_abc_def")
    header = tmp_path / "header"
    header.write_text("Bearer s3cret")
    args = parse("webhooks", "update", "7", "--key", f"@{api_key}", "--header", f"Authorization=@{header}")
    assert (args.key, args.headers) == ("mdk_abc_def", {"Authorization": "Bearer s3cret"})

    config = tmp_path / "config.json"
    config.write_text(json.dumps({"routing_key": "from-json-file"}))
    assert parse("targets", "update", "3", "--config", f"@{config}").config == {"routing_key": "from-json-file"}


def test_a_literal_value_is_kept_and_a_missing_file_is_a_usage_error(tmp_path, capsys):
    assert parse("targets", "create", "--service-id", "1", "--routing-key", "plain").routing_key == "plain"
    with pytest.raises(SystemExit) as usage:
        parse("targets", "create", "--service-id", "1", "--routing-key", f"@{tmp_path / 'missing'}")
    assert usage.value.code == 2
    assert "cannot read" in capsys.readouterr().err


def test_all_of_standard_input_is_read_and_a_leading_at_sign_can_be_escaped(monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO('{\n  "routing_key": "pretty"\n}\n'))
    assert parse("targets", "update", "3", "--config", "-").config == {"routing_key": "pretty"}
    args = parse("webhooks", "update", "7", "--header", "X-Team=@@oncall")
    assert args.headers == {"X-Team": "@oncall"}
