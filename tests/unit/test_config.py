import logging
from pathlib import Path

import pytest

from medic.config import ConfigError, Settings, variables


def test_defaults_match_the_documented_ports():
    settings = Settings.from_env({})
    assert (settings.gateway_port, settings.auth_port, settings.heartbeat_port,
            settings.routing_port, settings.delivery_port) == (8080, 50051, 50052, 50053, 50054)
    assert settings.data_dir == Path(".medic")
    assert settings.target("heartbeat") == "127.0.0.1:50052"


def test_invalid_value_names_the_variable():
    with pytest.raises(ConfigError, match="MEDIC_GATEWAY_PORT='http'"):
        Settings.from_env({"MEDIC_GATEWAY_PORT": "http"})


def test_all_errors_are_reported_at_once():
    with pytest.raises(ConfigError) as info:
        Settings.from_env({"MEDIC_GATEWAY_PORT": "99999", "MEDIC_DB_POOL_SIZE": "0"})
    assert "MEDIC_GATEWAY_PORT" in str(info.value) and "MEDIC_DB_POOL_SIZE" in str(info.value)


def test_secret_values_are_never_echoed():
    settings = Settings.from_env({"MEDIC_DATABASE_URL": "postgresql://u:hunter2@db/medic"})
    assert "hunter2" not in str(settings.masked())
    assert settings.masked()["MEDIC_DATABASE_URL"] == "***"


def test_unknown_medic_variable_is_warned_about(caplog):
    with caplog.at_level(logging.WARNING):
        Settings.from_env({"MEDIC_GATEWAY_PROT": "1"})
    assert "MEDIC_GATEWAY_PROT" in caplog.text


def test_test_and_benchmark_variables_are_not_warned_about(caplog):
    with caplog.at_level(logging.WARNING):
        Settings.from_env({"MEDIC_TEST_EMBEDDED_POSTGRES": "1", "MEDIC_BENCH_LIMITS": "/tmp/limits",
                           "MEDIC_BENCH_LOG": "/tmp/bench.log", "MEDIC_BENCHMARK": "1"})
    assert "MEDIC_TEST_" not in caplog.text and "MEDIC_BENCH_" not in caplog.text
    assert "MEDIC_BENCHMARK" in caplog.text  # only the MEDIC_BENCH_ prefix is exempt


def test_explicit_target_wins_over_host_and_port():
    settings = Settings.from_env({"MEDIC_HEARTBEAT_TARGET": "dns:///heartbeat:50052"})
    assert settings.target("heartbeat") == "dns:///heartbeat:50052"


def test_every_variable_is_documented():
    for env, _default, doc in variables():
        assert env.startswith("MEDIC_") and doc
