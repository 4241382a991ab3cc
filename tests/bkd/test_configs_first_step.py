"""The first training step of EVERY packaged sj-bkd config, at tiny size (a project rule).

Each config's own student, teacher, taps, head and mode, with B=2, T=2 (an SNN teacher's teacher_T=2) and
the smallest input the architecture takes (32x32; 28x28 for MNIST; 128x128 for the SEW CIFAR10-DVS net,
whose seven max pools need it); ViT teachers are built for that input size (``teacher.kwargs.img_size``).
The data are random tensors of the config's layout (the real data sets are not in the repository). The
CIFAR10-DVS rows (an SNN teacher) crashed on this step before issue 24 item 1 was fixed.

Models are built once per (name, kwargs) and copied: many configs share a student or a teacher, and
building ViT-B / SEW-ResNet-50 costs more than their step at 32x32.
"""

import copy

import pytest
import torch
import torch.nn as nn
from sj_bkd.distill import distill_step
from sj_bkd.models import TEACHERS
from sj_bkd.recipe import RECIPE, build_distillation_model
from sj_common.config import available_configs
from sj_common.engine import StepContext
from sj_common.recipe import Data

from sj_bkd import models as bkd_models
from tests.tiny import RandomItems

B, T = 2, 2
_TERMS = {
    "none": set(),
    "kd": {"kd"},
    "wsld": {"wsld"},
    "bkd": {"bkd"},
    "mixed": {"bkd", "wsld"},
    "kdsnn": {"kdsnn"},
    "lasnn": {"lasnn"},
}


@pytest.fixture(scope="module")
def cached_models():
    """``sj_bkd.models.create_model`` built once per (name, kwargs), handed out as deep copies; only the
    last few are kept (the configs run in name order, so those sharing models are neighbours)."""
    original, cache = bkd_models.create_model, {}

    def create(name, **kw):
        key = (name, repr(sorted(kw.items())))
        if key not in cache:
            while len(cache) >= 2:  # bounded memory: ViT-B and CML-8-768 are 300 MB each
                cache.pop(next(iter(cache)))
            cache[key] = original(name, **kw)
        return copy.deepcopy(cache[key])

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(bkd_models, "create_model", create)
        yield
    cache.clear()


def _tiny(name):
    """The config ``name`` at tiny size, and random data of its layout."""
    base = RECIPE.config(name)
    over = {"data.T": T}
    events = base.data.name == "cifar10dvs"
    size = {"mnist5k": 28}.get(base.data.name, 32)
    if base.student.name == "sew_dvs":
        size = 128
    if base.data.teacher_T:
        over["data.teacher_T"] = T
    if base.teacher.name in TEACHERS and TEACHERS[base.teacher.name][2] == "vit":
        over["teacher.kwargs"] = {**base.teacher.kwargs, "img_size": 32}
        if base.data.teacher_input_size:
            over["data.teacher_input_size"] = 32
    cfg = RECIPE.config(name, over)
    channels = {"mnist5k": 1, "cifar10dvs": 2}.get(base.data.name, 3)
    if events:
        shapes = [(T, channels, size, size)] * (2 if base.data.teacher_T else 1)
    else:
        shapes = [(channels, size, size)]
    return cfg, Data(RandomItems(shapes, B), None, None, num_classes=10, sequence_input=events)


@pytest.mark.slow
@pytest.mark.parametrize("name", available_configs("sj_bkd"))
def test_first_training_step_of_every_config(name, cached_models, release_memory, one_thread):
    cfg, data = _tiny(name)
    torch.manual_seed(0)
    model = build_distillation_model(cfg, data, require_teacher_weights=False)
    model.train()
    batch = data.train.batch()
    ctx = StepContext(0, 0, 1, 1, torch.device("cpu"), True, cfg.train)
    out = distill_step(model, batch, ctx)
    assert set(out.logs) == {"ce"} | _TERMS[cfg.distill.mode], name
    assert out.logits.shape == (B, 10) and torch.isfinite(out.loss), name
    out.loss.backward()
    trained = [p for p in model.parameters() if p.requires_grad]
    assert trained and any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.student.parameters())
    if isinstance(model.head, nn.Module):  # the head is trained by the feature term
        assert all(p.grad is not None for p in model.head.parameters()), name
    if model.teacher is not None:
        assert all(p.grad is None for p in model.teacher.parameters()), name
