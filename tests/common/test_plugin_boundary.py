"""sj_common knows no plugin's models or checkpoint keys: that knowledge lives in the plugin that owns it
(a plugin's class names, its model registry's names, the reference key names its converter maps)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PLUGINS = ("sj_calib", "sj_bkd", "sj_transfer")
# BatchNorm's state names and SpikingJelly's neuron attributes appear in converters and in sj_common alike
_SHARED_KEYS = {"running_mean", "running_var", "num_batches_tracked", "v_threshold", "surrogate_function"}


def _public_classes(package: str) -> set[str]:
    names = set()
    for f in (ROOT / package / "src" / package).rglob("*.py"):
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                names.add(node.name)
    return names


def _reference_key_names(package: str) -> set[str]:
    """Identifiers with an underscore inside the key names and key patterns of the plugin's converter module
    (string constants without spaces: ``patch_embed``, ``rgb_fc``, ``residual_function``, ...)."""
    tree = ast.parse((ROOT / package / "src" / package / "reference.py").read_text())
    out = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and not re.search(r"\s", node.value)
        ):
            out |= {w for w in re.findall(r"[A-Za-z]\w*", node.value) if "_" in w.strip("_")}
    return out - _SHARED_KEYS - {"transfer_for_dvs"}  # a source name: sj_common says what to install


def _model_names() -> set[str]:
    """The plugins' own model registry names (those SpikingJelly or torchvision also define are theirs)."""
    import torchvision.models
    from sj_bkd.models import list_models
    from sj_calib.models import MODELS
    from spikingjelly.activation_based.model import sew_resnet, spiking_vgg

    names = set(MODELS) | {n for group in list_models().values() for n in group}
    return {
        n
        for n in names
        if not any(hasattr(m, n) for m in (sew_resnet, spiking_vgg, torchvision.models))
        and not n.startswith("vit_")
    }


def test_sj_common_source_names_no_plugin_model_or_key():
    words = set().union(*(_public_classes(p) | _reference_key_names(p) for p in PLUGINS)) | _model_names()
    assert {"TransferVGGSNN", "SpikingformerCML", "QCFS", "patch_embed", "rgb_fc", "resnet20"} <= words
    found = []
    for f in sorted((ROOT / "sj_common" / "src").rglob("*.py")):
        for n, line in enumerate(f.read_text().splitlines(), 1):
            hits = [w for w in words if re.search(rf"(?<!\w){re.escape(w)}(?!\w)", line)]
            if hits:
                found.append(f"{f.relative_to(ROOT)}:{n}: {sorted(hits)}: {line.strip()}")
    assert found == [], "\n".join(found)
