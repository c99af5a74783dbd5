from pathlib import Path

from medic_cli import apidocs

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def test_api_reference_is_generated_from_the_current_contracts():
    assert DOC.read_text() == apidocs.render(), "docs/api.md is stale: python -m medic_cli.apidocs > docs/api.md"


def test_api_reference_covers_every_rpc_and_route():
    text = apidocs.render()
    from medic import contracts
    for method in contracts.policies():
        service, name = method.strip("/").split("/")
        assert f"**`{name}(" in text, method
    for route in ("POST /heartbeat", "GET /v2/deliveries", "PUT /v2/api-keys/{key_id}/rate-limits"):
        assert f"`{route}`" in text
