"""Generate the Python code for the contracts in ``protos/`` with grpcio-tools.

The generated modules are committed (``medic/v1/*_pb2*.py``) so that a fresh
clone imports without a build step; ``tests/unit/test_generated_code.py``
regenerates them into a temporary folder and fails when the committed copy is
stale. Run ``medic protos`` after editing a ``.proto`` file.
"""
from __future__ import annotations

import importlib.resources
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = REPO_ROOT / "protos"


def proto_files(proto_root: Path = PROTO_ROOT) -> list[Path]:
    return sorted(proto_root.glob("medic/v1/*.proto"))


def generate(out_dir: Path, proto_root: Path = PROTO_ROOT) -> list[Path]:
    """Writes ``medic/v1/*_pb2.py``, ``*_pb2_grpc.py`` and ``*.pyi`` under out_dir."""
    from grpc_tools import protoc

    well_known = importlib.resources.files("grpc_tools") / "_proto"
    files = proto_files(proto_root)
    if not files:
        raise RuntimeError(f"no .proto files under {proto_root}")
    args = [
        "grpc_tools.protoc",
        f"-I{proto_root}",
        f"-I{well_known}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *[str(f.relative_to(proto_root)) for f in files],
    ]
    code = protoc.main(args)
    if code != 0:
        raise RuntimeError(f"protoc failed with exit code {code}")
    return sorted((out_dir / "medic" / "v1").glob("*_pb2*.py*"))


def main() -> int:
    written = generate(REPO_ROOT)
    for path in written:
        print(path.relative_to(REPO_ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
