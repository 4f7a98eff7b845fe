"""The three parts (docs/architecture.md): dependencies point one way. The device and head
office import only themselves and the shared modules, so the wheel that leaves the lab out
(pyproject.toml) runs; the shared modules import none of the parts."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO

ALLOWED = {"device": {"device", "shared"}, "hq": {"hq", "shared"}, "shared": {"shared"},
           "lab": {"lab", "device", "hq", "shared"}}
# The one way into the lab from the device: `shopper-edge` adds the lab's commands when
# appliance.lab is importable (a development install), checked with find_spec first.
GUARDED = {("appliance/device/cli.py", "appliance.lab.cli")}


def part(module: str) -> str:
    """device, hq, lab, or shared (appliance's top-level modules and the package itself)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in ("device", "hq", "lab") else "shared"


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: relative import"
            found.add(node.module)
    return {name for name in found if name.split(".")[0] == "appliance"}


def wrong_imports(root: Path) -> list[str]:
    """'file imports module' for each import of `root`/appliance against the rule."""
    wrong = []
    for path in sorted((root / "appliance").rglob("*.py")):
        name = path.relative_to(root).as_posix()
        own = part(".".join(path.relative_to(root).with_suffix("").parts))
        for module in sorted(imports(path)):
            if part(module) not in ALLOWED[own] and (name, module) not in GUARDED:
                wrong.append(f"{name} imports {module}")
    return wrong


def test_dependencies_point_one_way():
    assert wrong_imports(REPO) == []


def test_a_wrong_import_is_found(tmp_path):
    for name, text in {"errors.py": "from appliance.device import cli\n",
                       "device/worker.py": "import appliance.lab.bench\n",
                       "device/cli.py": "from appliance.lab.cli import add_commands\n",
                       "hq/store.py": "from appliance.device.window import x\nimport appliance\n",
                       "lab/bench.py": "from appliance.device.pipeline import x\n"}.items():
        path = tmp_path / "appliance" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert wrong_imports(tmp_path) == [
        "appliance/device/worker.py imports appliance.lab.bench",
        "appliance/errors.py imports appliance.device",
        "appliance/hq/store.py imports appliance.device.window"]
