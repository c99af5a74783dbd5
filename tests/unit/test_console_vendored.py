"""The console's vendored JavaScript is exactly the pinned file, and its pages
load nothing from outside the gateway."""
import hashlib
import re
from pathlib import Path

CONSOLE = Path(__file__).resolve().parents[2] / "gateway" / "console"
PINNED = {"htmx.min.js": "d6fdc75f204e6bdefa99b69bf1e6d4ac69b8a364f77929f45c13476b4000f717"}


def test_vendored_htmx_matches_its_pinned_checksum():
    for name, digest in PINNED.items():
        assert hashlib.sha256((CONSOLE / "static" / name).read_bytes()).hexdigest() == digest, name
        assert digest in (CONSOLE / "static" / "VENDORED.md").read_text(), f"VENDORED.md does not pin {name}"


def test_templates_reference_only_the_gateways_own_files():
    for template in (CONSOLE / "templates").glob("*.html"):
        for url in re.findall(r'(?:src|href)="([^"{]+)"', template.read_text()):
            assert url.startswith(("/", "#", "data:")), f"{template.name} loads {url}"
