import filecmp
from pathlib import Path

from medic import contracts
from medic_cli import protogen
from medic.v1 import options_pb2


def test_generated_code_matches_the_protos(tmp_path: Path):
    protogen.generate(tmp_path)
    fresh = tmp_path / "medic" / "v1"
    committed = protogen.REPO_ROOT / "medic" / "v1"
    generated = sorted(p.name for p in fresh.iterdir())
    assert generated, "protoc generated nothing"
    stale = [name for name in generated
             if not (committed / name).exists() or not filecmp.cmp(fresh / name, committed / name, shallow=False)]
    assert not stale, f"stale generated code, run `medic protos`: {stale}"
    extra = sorted(p.name for p in committed.glob("*_pb2*") if p.name not in generated)
    assert not extra, f"generated files without a .proto: {extra}"


def test_every_rpc_declares_its_required_scope():
    policies = contracts.policies()
    assert "/medic.v1.HeartbeatService/RecordHeartbeat" in policies
    missing = [name for name, p in policies.items() if p.scope == options_pb2.SCOPE_UNSPECIFIED]
    assert not missing


def test_heartbeat_rpcs_count_against_the_heartbeat_rate_limit_class():
    policy = contracts.policy_for("/medic.v1.HeartbeatService/RecordHeartbeat")
    assert policy.scope_name == "write"
    assert policy.rate_limit_class_name == "heartbeat"
    assert contracts.policy_for("/medic.v1.HeartbeatService/ListAlerts").rate_limit_class_name == "management"


def test_health_and_reflection_are_public():
    assert contracts.is_public("/grpc.health.v1.Health/Check")
    assert contracts.is_public("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo")
    assert not contracts.is_public("/medic.v1.HeartbeatService/GetService")
