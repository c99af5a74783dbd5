"""The deployment files agree with the code, so they cannot rot unnoticed.

No Docker engine runs here: docker-compose.yml, the Dockerfile and .env.example
are parsed and every command, variable, port, healthcheck and dependency they
name is checked against the CLI parser (``medic_cli.main.build_parser``), the
settings (``medic.config.Settings``) and the process list.
"""
from __future__ import annotations

import dataclasses
import json
import re
import shlex
from pathlib import Path

import pytest
import yaml

from medic_cli.main import build_parser
from medic.config import GRPC_SERVICES, Settings

REPO = Path(__file__).resolve().parents[2]
PROCESSES = {*GRPC_SERVICES, "monitor", "gateway"}
SETTING_VARIABLES = {f.metadata["env"] for f in dataclasses.fields(Settings)}
INFRASTRUCTURE = {"postgres", "redis"}
# Who calls whom over gRPC (besides everyone calling auth to verify API keys).
CALLS = {"monitor": {"routing", "remediation"}, "routing": {"delivery"}, "remediation": {"heartbeat"},
         "gateway": {"auth", "heartbeat", "routing", "delivery", "remediation"}}
INTERPOLATION = re.compile(r"\$\{(\w+)(?::?([-?])([^}]*))?\}")


# --- reading the files ---------------------------------------------------------------

@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


@pytest.fixture(scope="module")
def medic_services(services) -> dict:
    """The compose services that run the Medic image."""
    image = services["gateway"]["image"]
    return {name: s for name, s in services.items() if s.get("image") == image}


@pytest.fixture(scope="module")
def env_example() -> dict[str, str]:
    values = {}
    for line in (REPO / ".env.example").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    lines, current = [], ""
    for raw in (REPO / "Dockerfile").read_text().splitlines():
        stripped = raw.strip()
        if stripped.startswith("#") or not stripped:
            continue
        current += " " + stripped.rstrip("\\").strip()
        if not stripped.endswith("\\"):
            lines.append(current.strip())
            current = ""
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
            for line in lines]


def dockerfile(instruction: str) -> list[str]:
    return [args for name, args in dockerfile_instructions() if name == instruction]


def interpolate(value: str, env_example: dict[str, str]) -> str | None:
    """A compose value as a deployment with .env.example's values would see it; None when it
    needs a secret the operator supplies (${VAR:?...} left empty in .env.example)."""
    missing = []

    def one(match: re.Match) -> str:
        name, kind, default = match.group(1), match.group(2), match.group(3) or ""
        given = env_example.get(name, "")
        if given:
            return given
        if kind == "?":
            missing.append(name)
            return ""
        return default

    result = INTERPOLATION.sub(one, str(value))
    return None if missing else result


def effective_settings(service: dict, env_example: dict[str, str]) -> Settings:
    env = {}
    for name, value in service.get("environment", {}).items():
        resolved = interpolate(value, env_example)
        if resolved is not None:
            env[name] = resolved
    return Settings.from_env(env, warn_unknown=False)


def parses(argv: list[str]) -> bool:
    try:
        build_parser().parse_args(argv)
    except SystemExit:
        return False
    return True


def served_process(service: dict) -> str | None:
    command = service.get("command") or []
    return command[1] if len(command) == 2 and command[0] == "serve" else None


def depends(services: dict, name: str) -> dict[str, str]:
    """Every service `name` waits for, directly or through others: {service: condition}."""
    seen: dict[str, str] = {}
    todo = [name]
    while todo:
        for dep, spec in (services[todo.pop()].get("depends_on") or {}).items():
            if dep not in seen:
                seen[dep] = spec["condition"] if isinstance(spec, dict) else "service_started"
                todo.append(dep)
    return seen


# --- the process list ------------------------------------------------------------------

def test_compose_runs_every_medic_process_once_named_after_it(medic_services):
    served = {name: served_process(s) for name, s in medic_services.items() if served_process(s)}
    assert sorted(served.values()) == sorted(PROCESSES)
    assert all(name == process for name, process in served.items())


def test_compose_has_postgres_16_redis_and_a_one_shot_migrate(services):
    assert services["postgres"]["image"].split(":")[1].startswith("16")
    assert services["redis"]["image"].startswith("redis")
    assert services["migrate"]["command"] == ["migrate"]
    assert services["migrate"]["restart"] == "no"


def test_heartbeat_leaves_the_monitor_to_the_monitor_service(services, env_example):
    assert effective_settings(services["heartbeat"], env_example).monitor_enabled is False
    assert services["monitor"]["command"] == ["serve", "monitor"]


# --- commands ----------------------------------------------------------------------------

def test_every_compose_command_exists_in_the_cli(medic_services):
    for name, service in medic_services.items():
        assert parses(service["command"]), f"{name}: medic {' '.join(service['command'])}"


def test_every_healthcheck_command_exists_and_checks_its_own_process(services, medic_services):
    for name, service in services.items():
        if name == "migrate":
            continue  # one-shot
        test = service.get("healthcheck", {}).get("test")
        assert test and test[0] == "CMD", f"{name} needs an exec-form healthcheck"
        if name in INFRASTRUCTURE:
            continue
        assert test[1] == "medic" and parses(test[2:]), f"{name}: {test}"
        assert test[2:] == ["healthcheck", served_process(service)]


def test_dockerfile_entrypoint_cmd_and_healthcheck_exist_in_the_cli():
    (entrypoint,) = dockerfile("ENTRYPOINT")
    (cmd,) = dockerfile("CMD")
    assert json.loads(entrypoint) == ["medic"]  # exec form
    assert parses(json.loads(cmd))
    (healthcheck,) = dockerfile("HEALTHCHECK")
    check = json.loads(healthcheck.split(" CMD ", 1)[1])
    assert check[0] == "medic" and parses(check[1:])


def test_dockerfile_is_multi_stage_slim_and_not_root():
    stages = dockerfile("FROM")
    assert len(stages) >= 2
    assert stages[-1].split()[0] == "python:3.11-slim"
    (user,) = dockerfile("USER")
    assert user.split(":")[0] not in ("root", "0")


def test_the_image_holds_what_setup_py_packages():
    ignore = (REPO / ".dockerignore").read_text()
    copied = {source.rstrip("/") for args in dockerfile("COPY") if "--from" not in args
              for source in shlex.split(args)[:-1]}
    for needed in ("pyproject.toml", "setup.py", "medic", "services", "gateway", "migrations"):
        assert needed in copied, f"the builder stage must COPY {needed}"
        assert f"!{needed}" in ignore, f".dockerignore must let {needed} into the context"


# --- environment ---------------------------------------------------------------------------

def test_every_medic_variable_set_is_a_setting(services, env_example):
    used = {name for s in services.values() for name in s.get("environment", {})
            if name.startswith("MEDIC_")}
    used |= {name for name in env_example if name.startswith("MEDIC_")}
    for args in dockerfile("ENV"):
        used |= set(re.findall(r"(MEDIC_\w+)=", args))
    assert used - SETTING_VARIABLES == set()


def test_every_value_set_is_valid_for_its_setting(medic_services, env_example):
    for name, service in medic_services.items():
        effective_settings(service, env_example)  # raises ConfigError naming the variable
        effective_settings(service, {})  # compose's own defaults, for a .env without them
    Settings.from_env({k: v for k, v in env_example.items() if k.startswith("MEDIC_") and v},
                      warn_unknown=False)


def test_env_example_documents_every_variable_compose_reads_and_nothing_else(env_example):
    text = (REPO / "docker-compose.yml").read_text()
    interpolated = {m.group(1) for m in INTERPOLATION.finditer(text)}
    assert interpolated == set(env_example)


def test_required_secrets_stop_compose_when_missing(medic_services, env_example):
    for name, service in medic_services.items():
        env = service["environment"]
        assert env["MEDIC_SERVICE_TOKEN"].startswith("${MEDIC_SERVICE_TOKEN:?"), name
        assert env["MEDIC_DATABASE_URL"].startswith("postgresql://"), name
        assert env_example["MEDIC_SERVICE_TOKEN"] == ""  # generated by the operator, never shipped


# --- ports and addresses ---------------------------------------------------------------------

def test_targets_name_the_compose_service_and_its_port(medic_services, env_example):
    for name, service in medic_services.items():
        settings = effective_settings(service, env_example)
        for callee in GRPC_SERVICES:
            match = re.fullmatch(r"dns:///([\w-]+):(\d+)", settings.target(callee))
            assert match, f"{name}: {callee} target must be dns:///<service>:<port> (all replicas)"
            host, port = match.group(1), int(match.group(2))
            assert served_process(medic_services[host]) == callee
            assert port == effective_settings(medic_services[host], env_example).grpc_port(callee)


def test_only_the_gateway_publishes_a_port_and_it_is_the_gateway_port(services, env_example):
    for name, service in services.items():
        if name != "gateway":
            assert "ports" not in service, f"{name} would collide when scaled"
    (mapping,) = services["gateway"]["ports"]
    container_port = int(interpolate(mapping, env_example).split(":")[-1])
    assert container_port == effective_settings(services["gateway"], env_example).gateway_port


def test_dockerfile_exposes_the_default_ports():
    exposed = {int(p) for args in dockerfile("EXPOSE") for p in args.split()}
    defaults = Settings()
    wanted = {defaults.gateway_port}
    wanted |= {defaults.grpc_port(p) for p in PROCESSES - {"gateway"}}
    wanted |= {defaults.metrics_port(p) for p in PROCESSES - {"gateway"}}
    assert exposed == wanted


def test_every_service_can_scale(services):
    for name, service in services.items():
        assert "container_name" not in service, name
        assert "hostname" not in service, name


# --- start order -------------------------------------------------------------------------------

def test_migrate_waits_for_a_healthy_postgres(services):
    assert depends(services, "migrate")["postgres"] == "service_healthy"


def test_every_medic_service_starts_after_migrations_on_a_healthy_postgres(medic_services, services):
    for name, service in medic_services.items():
        if name == "migrate":
            continue
        waits = depends(services, name)
        assert waits.get("migrate") == "service_completed_successfully", name
        assert waits.get("postgres") == "service_healthy", name
        if service["environment"].get("MEDIC_REDIS_URL"):
            assert waits.get("redis") == "service_healthy", name


def test_every_service_waits_for_the_services_it_calls(medic_services, services):
    for name in medic_services:
        process = served_process(medic_services[name])
        if process is None:
            continue
        needs = CALLS.get(process, set()) | ({"auth"} if process != "auth" else set())
        waits = depends(services, name)
        for callee in needs:
            assert waits.get(callee) == "service_healthy", f"{name} must wait for {callee}"


def test_every_healthy_condition_names_a_service_with_a_healthcheck(services):
    for name, service in services.items():
        for dep, spec in (service.get("depends_on") or {}).items():
            assert dep in services, f"{name} depends on unknown {dep}"
            if spec["condition"] == "service_healthy":
                assert "healthcheck" in services[dep], f"{dep} has no healthcheck"


def test_docker_waits_longer_than_the_shutdown_grace_before_killing(medic_services, env_example):
    for name, service in medic_services.items():
        if name == "migrate":
            continue
        waited = float(service["stop_grace_period"].rstrip("s"))
        assert waited > effective_settings(service, env_example).shutdown_grace_seconds, name


def test_docker_compose_commands_in_the_docs_name_real_services_and_commands(services):
    for path in ("docker-compose.yml", "docs/operations.md"):
        text = (REPO / path).read_text()
        for match in re.finditer(r"docker compose run --rm (?:-T )?([\w-]+) ([\w-]+)", text):
            service, command = match.groups()
            assert service in services, f"{path}: {match.group(0)}"
            assert parses([command]), f"{path}: {match.group(0)}"
