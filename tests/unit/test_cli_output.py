"""The pure parts of the `medic` management commands: which key and URL win,
tables, and secrets kept out of the output."""
import pytest

from medic_cli.api import ApiError, api_key, gateway_url, hide_secrets, table
from medic.config import Settings


def test_key_flag_wins_over_variable_which_wins_over_the_admin_key_file(tmp_path):
    (tmp_path / "admin.key").write_text("mdk_file\n")
    from_file = Settings.from_env({"MEDIC_DATA_DIR": str(tmp_path)})
    from_env = Settings.from_env({"MEDIC_DATA_DIR": str(tmp_path), "MEDIC_API_KEY": "mdk_env"})
    assert api_key(None, from_file) == "mdk_file"
    assert api_key(None, from_env) == "mdk_env"
    assert api_key("mdk_flag", from_env) == "mdk_flag"


def test_missing_key_says_where_it_looked(tmp_path):
    with pytest.raises(ApiError, match="no API key") as info:
        api_key(None, Settings.from_env({"MEDIC_DATA_DIR": str(tmp_path)}))
    assert str(tmp_path / "admin.key") in info.value.message and info.value.exit_code == 2


def test_url_defaults_to_the_local_gateway_port():
    assert gateway_url(None, Settings.from_env({})) == "http://127.0.0.1:8080"
    assert gateway_url(None, Settings.from_env({"MEDIC_GATEWAY_PORT": "9000"})) == "http://127.0.0.1:9000"
    assert gateway_url(None, Settings.from_env({"MEDIC_URL": "http://medic:8080/"})) == "http://medic:8080"
    assert gateway_url("http://other", Settings.from_env({"MEDIC_URL": "http://medic"})) == "http://other"


def test_table_aligns_columns_and_shows_missing_values_as_dashes():
    rows = [{"id": 1, "name": "backup", "at": "2026-11-27T07:57:44.123456Z", "on": True},
            {"id": 22, "name": None, "at": None, "on": False}]
    assert table(rows, [("id", "id"), ("name", "name"), ("at", "at"), ("on", "on")]).splitlines() == [
        "ID  NAME    AT                    ON",
        "1   backup  2026-11-27 07:57:44Z  yes",
        "22  -       -                     no",
    ]


def test_routing_keys_and_header_values_are_hidden():
    targets = [{"config": {"routing_key": "R0UT1NG"}},
               {"config": {"url": "https://x", "headers": {"Authorization": "Bearer t0ken"}}}]
    shown = str(hide_secrets(targets))
    assert "R0UT1NG" not in shown and "t0ken" not in shown and "Authorization" in shown


def test_table_aligns_wide_cjk_characters_by_their_display_width():
    import wcwidth

    rows = [{"name": "夜間バックアップ", "state": "up"}, {"name": "web", "state": "down"}]
    lines = table(rows, [("name", "name"), ("state", "state")]).splitlines()
    # Each CJK character takes two columns: the next column starts at the same screen column.
    starts = [wcwidth.wcswidth(line[:line.index(state)]) for line, state in zip(lines, ("STATE", "up", "down"))]
    assert starts == [18, 18, 18]
