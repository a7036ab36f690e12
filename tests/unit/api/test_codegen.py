"""The committed edgecups.v1 modules are exactly what the .proto files generate."""

from __future__ import annotations

from pathlib import Path

from control_plane.api.codegen import GENERATED_DIR, generate


def _tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


def test_committed_modules_match_the_protos(tmp_path: Path) -> None:
    generate(tmp_path / "generated")
    fresh = _tree(tmp_path / "generated")
    committed = _tree(GENERATED_DIR)
    assert sorted(fresh) == sorted(committed), "run: python -m control_plane.api.codegen"
    stale = [name for name in fresh if fresh[name] != committed[name]]
    assert not stale, f"stale generated modules {stale}; run: python -m control_plane.api.codegen"


def test_generated_modules_import_as_a_package() -> None:
    # Package-relative imports: no sys.path entry for generated/ is needed.
    from control_plane.api.generated.edgecups.v1 import sessions_pb2, sessions_pb2_grpc

    assert sessions_pb2.DESCRIPTOR.package == "edgecups.v1"
    assert sessions_pb2_grpc.SessionServiceStub is not None
    assert set(sessions_pb2.DESCRIPTOR.services_by_name["SessionService"].methods_by_name) == {
        "Create",
        "Modify",
        "Delete",
        "Get",
        "List",
        "Usage",
    }
