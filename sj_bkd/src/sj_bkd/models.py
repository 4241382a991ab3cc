"""One factory for BKD students (SpikingJelly SNNs) and teachers (torchvision / timm ANNs), timm-style.

>>> student = create_model("sew_resnet18", num_classes=1000)             # SpikingJelly, cnf='ADD'
>>> teacher = create_model("resnet18", num_classes=1000, weights="r18.pth")  # frozen, eval
>>> create_model("spikingformer_cml", num_classes=10, dim=384, depth=4, heads=12, pool_stages=(2, 3))

Students are SpikingJelly networks in multi-step mode: input ``[T, B, C, H, W]``, output ``[T, B, K]``.
Teachers are ANNs: input ``[B, C, H, W]``, output ``[B, K]``; they come back frozen (``eval()``,
``requires_grad_(False)``) so that no gradient, optimizer step or DDP all-reduce ever touches them (the
SEW reference ran its teacher with gradients and inside DDP: wasted backward and all-reduce). Teacher
weights load from a local file only, with a clear error when it is missing (the reference's ViT teacher
was silently random).

Table of names: :data:`STUDENTS` and :data:`TEACHERS`; :func:`list_models`.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn as nn
import torchvision
from sj_common.compat import if_node
from sj_common.models import check_frames
from sj_common.reference import safe_load
from spikingjelly.activation_based import functional, layer, surrogate
from spikingjelly.activation_based.model import sew_resnet, spiking_vgg
from spikingjelly.activation_based.model.sew_resnet import BasicBlock

from .spikingformer import SpikingformerCML

__all__ = [
    "STUDENTS",
    "TEACHERS",
    "create_model",
    "freeze",
    "is_student",
    "list_models",
    "load_weights",
    "SEWTiny",
    "SEWDVS",
    "CNNTiny",
    "ViTTeacher",
]


def _neuron_kwargs(kwargs: dict) -> dict:
    # The reference SEW students: IF, v_th 1, hard reset, ATan(alpha=2), detach_reset.
    return {"surrogate_function": surrogate.ATan(), "detach_reset": True, **kwargs}


def _replace_first_conv(conv: nn.Module, in_channels: int) -> layer.Conv2d:
    return layer.Conv2d(
        in_channels,
        conv.out_channels,
        conv.kernel_size,
        conv.stride,
        conv.padding,
        bias=conv.bias is not None,
    )


def _sew(depth: int):
    def build(num_classes: int = 1000, *, cnf: str = "ADD", in_channels: int = 3, **neuron_kw) -> nn.Module:
        if cnf not in ("ADD", "AND", "IAND"):
            raise ValueError(f"cnf: expected 'ADD', 'AND' or 'IAND', got {cnf!r}")
        fn = getattr(sew_resnet, f"sew_resnet{depth}")
        net = fn(
            pretrained=False,
            cnf=cnf,
            spiking_neuron=if_node,
            num_classes=num_classes,
            **_neuron_kwargs(neuron_kw),
        )
        if in_channels != 3:
            net.conv1 = _replace_first_conv(net.conv1, in_channels)
        functional.set_step_mode(net, "m")
        return net

    build.__doc__ = f"SpikingJelly SEW-ResNet{depth} (IF neurons, ATan, detach_reset; tap 'layer4')."
    return build


def _vgg(name: str):
    def build(num_classes: int = 1000, *, in_channels: int = 3, **neuron_kw) -> nn.Module:
        net = getattr(spiking_vgg, name)(
            pretrained=False, spiking_neuron=if_node, num_classes=num_classes, **_neuron_kwargs(neuron_kw)
        )
        if in_channels != 3:
            net.features[0] = _replace_first_conv(net.features[0], in_channels)
        functional.set_step_mode(net, "m")
        return net

    build.__doc__ = f"SpikingJelly {name} (IF neurons, ATan, detach_reset; tap 'features')."
    return build


class SEWTiny(nn.Module):
    """A small SEW-ResNet for 28x28 images, built from SpikingJelly's SEW ``BasicBlock`` (embedded default).

    stem conv3x3(in -> w) + BN + IF -> maxpool 2 (14x14) -> SEW block(w) -> SEW block(w -> 2w, stride 2,
    7x7) -> avgpool to ``pool_size`` x ``pool_size`` -> fc. SpikingJelly's ``sew_resnet*`` start with a
    64-channel 7x7/2 stem and four stages, too large for 28x28 MNIST on a CPU; the blocks themselves are
    SpikingJelly's. ``pool_size`` defaults to 3, not global pooling: with a receptive field this small, a
    global average throws away where the strokes are and training crawls (the same holds for
    :class:`CNNTiny`, which reached only ~78% val on MNIST-5k after 2 epochs with global pooling vs ~95%).

    Shapes: ``[T, B, in_channels, 28, 28]`` -> ``[T, B, num_classes]``; tap ``'layer2'``:
    ``[T, B, 2w, 7, 7]`` (after the SEW ADD: integer-valued multi-spikes).
    """

    def __init__(
        self,
        num_classes: int = 10,
        *,
        in_channels: int = 1,
        width: int = 8,
        pool_size: int = 3,
        cnf: str = "ADD",
        **neuron_kw,
    ):
        super().__init__()
        kw = _neuron_kwargs(neuron_kw)
        self.conv1 = layer.Conv2d(in_channels, width, 3, padding=1, bias=False)
        self.bn1 = layer.BatchNorm2d(width)
        self.sn1 = if_node(**kw)
        self.maxpool = layer.MaxPool2d(2)
        self.layer1 = BasicBlock(width, width, cnf=cnf, spiking_neuron=if_node, **kw)
        down = nn.Sequential(
            layer.Conv2d(width, 2 * width, 1, stride=2, bias=False), layer.BatchNorm2d(2 * width)
        )
        self.layer2 = BasicBlock(width, 2 * width, 2, down, cnf=cnf, spiking_neuron=if_node, **kw)
        self.avgpool = layer.AdaptiveAvgPool2d(pool_size)
        self.fc = layer.Linear(2 * width * pool_size**2, num_classes)
        self.in_channels = in_channels
        functional.set_step_mode(self, "m")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_frames(x, self.in_channels)
        x = self.maxpool(self.sn1(self.bn1(self.conv1(x))))
        x = self.layer2(self.layer1(x))
        return self.fc(self.avgpool(x).flatten(2))


class SEWDVS(nn.Module):
    """The SEW-ResNet of the paper's CIFAR10-DVS rows (the authors' ``cifar10dvs`` script), from
    SpikingJelly's SEW ``BasicBlock``.

    7 stages, each ``[conv1x1 + BN + PLIF when the width changes] + SEW block + MaxPool2``, widths
    64 x 4 then 128 x 3; PLIF neurons (init tau 2, detach_reset). ``conv`` holds the layers in the
    reference's order, so the distillation tap is ``'conv.9'`` (the 64 -> 128 conv1x1 + BN + PLIF, 8x8
    for 128x128 input). Shapes: ``[T, B, 2, 128, 128]`` -> ``[T, B, num_classes]``.
    """

    def __init__(self, num_classes: int = 10, *, in_channels: int = 2, cnf: str = "ADD", **neuron_kw) -> None:
        super().__init__()
        from spikingjelly.activation_based import neuron

        kw = {"init_tau": 2.0, "detach_reset": True, "step_mode": "m", **neuron_kw}
        widths = [64] * 4 + [128] * 3
        convs, cin = [], in_channels
        for w in widths:
            if w != cin:
                convs.append(
                    nn.Sequential(
                        layer.Conv2d(cin, w, 1, bias=False),
                        layer.BatchNorm2d(w),
                        neuron.ParametricLIFNode(**kw),
                    )
                )
            convs.append(BasicBlock(w, w, cnf=cnf, spiking_neuron=neuron.ParametricLIFNode, **kw))
            convs.append(layer.MaxPool2d(2))
            cin = w
        self.conv = nn.Sequential(*convs)
        self.fc = layer.Linear(128, num_classes)
        self.in_channels = in_channels
        functional.set_step_mode(self, "m")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_frames(x, self.in_channels)
        return self.fc(self.conv(x).mean((3, 4)))


class CNNTiny(nn.Module):
    """A small ANN teacher for 28x28 images (embedded default): 3 conv-BN-ReLU stages, 2 max pools,
    average pooling to ``pool_size`` x ``pool_size`` (3: see :class:`SEWTiny` on why not global), fc.

    Shapes: ``[B, in_channels, 28, 28]`` -> ``[B, num_classes]``; tap ``'features'``: ``[B, 4w, 7, 7]``.
    """

    def __init__(
        self, num_classes: int = 10, *, in_channels: int = 1, width: int = 16, pool_size: int = 3
    ) -> None:
        super().__init__()

        def cbr(i, o):
            return [nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU(inplace=True)]

        w = width
        self.features = nn.Sequential(
            *cbr(in_channels, w), nn.MaxPool2d(2), *cbr(w, 2 * w), nn.MaxPool2d(2), *cbr(2 * w, 4 * w)
        )
        self.pool = nn.AdaptiveAvgPool2d(pool_size)
        self.fc = nn.Linear(4 * w * pool_size**2, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.features(x)).flatten(1))


class ViTTeacher(nn.Module):
    """A timm ViT whose pre-logits vector is tappable as ``'pre_logits'`` (``[B, D]``).

    The reference called ``vit.forward(x, True)``, which timm lacks (a TypeError); here
    ``pre = forward_head(forward_features(x), pre_logits=True)`` and ``logits = head(pre)``.
    Input ``[B, 3, 224, 224]`` (upsample CIFAR images first), output ``[B, K]``.
    """

    def __init__(self, vit: nn.Module) -> None:
        super().__init__()
        self.vit = vit
        self.pre_logits = nn.Identity()
        self.embed_dim = vit.num_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = self.pre_logits(self.vit.forward_head(self.vit.forward_features(x), pre_logits=True))
        return self.vit.head(pre)


def _import_timm():
    try:
        return importlib.import_module("timm")
    except ImportError as e:  # the optional extra
        raise ImportError("ViT teachers need timm: pip install 'sj-bkd[vit]' (or pip install timm)") from e


def _vit(timm_name: str):
    def build(num_classes: int = 1000, *, img_size: int = 224) -> nn.Module:
        timm = _import_timm()
        return ViTTeacher(
            timm.create_model(timm_name, pretrained=False, num_classes=num_classes, img_size=img_size)
        )

    build.__doc__ = f"timm {timm_name} (AugReg in21k->in1k weights from a local file); tap 'pre_logits'."
    return build


def _tv_resnet(depth: int):
    def build(num_classes: int = 1000, *, in_channels: int = 3) -> nn.Module:
        net = getattr(torchvision.models, f"resnet{depth}")(weights=None, num_classes=num_classes)
        if in_channels != 3:
            net.conv1 = nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)
        return net

    build.__doc__ = f"torchvision ResNet{depth} (IMAGENET1K_V1 weights from a local file); tap 'layer4'."
    return build


#: Student builders: name -> (builder, default feature tap).
STUDENTS: dict[str, tuple[Callable[..., nn.Module], str]] = {
    "sew_resnet18": (_sew(18), "layer4"),
    "sew_resnet34": (_sew(34), "layer4"),
    "sew_resnet50": (_sew(50), "layer4"),
    **{
        n: (_vgg(n), "features")
        for n in [f"spiking_vgg{d}{bn}" for d in (11, 13, 16, 19) for bn in ("", "_bn")]
    },
    "spikingformer_cml": (SpikingformerCML, "blocks"),
    "sew_tiny": (SEWTiny, "layer2"),
    "sew_dvs": (SEWDVS, "conv.9"),
}
#: Teacher builders: name -> (builder, default feature tap, kind for the head: 'cnn' maps | 'vit' vectors).
TEACHERS: dict[str, tuple[Callable[..., nn.Module], str, str]] = {
    "resnet18": (_tv_resnet(18), "layer4", "cnn"),
    "resnet34": (_tv_resnet(34), "layer4", "cnn"),
    "resnet50": (_tv_resnet(50), "layer4", "cnn"),
    "vit_small_patch16_224": (_vit("vit_small_patch16_224"), "pre_logits", "vit"),
    "vit_base_patch16_224": (_vit("vit_base_patch16_224"), "pre_logits", "vit"),
    "cnn_tiny": (CNNTiny, "features", "cnn"),
}


def list_models() -> dict[str, list[str]]:
    return {"students": sorted(STUDENTS), "teachers": sorted(TEACHERS)}


def is_student(name: str) -> bool:
    return name in STUDENTS


def freeze(model: nn.Module) -> nn.Module:
    """``eval()`` + ``requires_grad_(False)``; returns ``model``."""
    model.eval()
    model.requires_grad_(False)
    return model


def load_weights(model: nn.Module, path: str | os.PathLike, *, arg: str = "weights") -> nn.Module:
    """Load a local checkpoint strictly: a state dict, or a dict holding one under 'model' / 'state_dict'.

    For the authors' released BKDSNN students (other key names) use
    :func:`sj_common.reference.load_reference_checkpoint` with ``source='bkdsnn'``. Files are read with
    ``torch.load(weights_only=True)``, ``argparse.Namespace`` allowed (:func:`sj_common.reference.safe_load`).
    ``module.`` prefixes (DDP) are stripped. timm ``.npz`` files go through timm's own loader. Missing
    file, or keys/shapes that do not match, raise an error naming the file.
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise FileNotFoundError(
            f"{arg}: no weights file at {str(p)!r} (pass a local .pt/.pth file; nothing is downloaded)"
        )
    target = model.vit if isinstance(model, ViTTeacher) else model
    if p.suffix == ".npz":
        if not isinstance(model, ViTTeacher):
            raise ValueError(
                f"{arg}: .npz weights are timm ViT checkpoints, got model {type(model).__name__}"
            )
        _import_timm().models.load_checkpoint(target, str(p))
        return model
    # weights-only with an explicit allow-list (argparse.Namespace: BKDSNN and timm save 'args' beside the
    # weights); anything else is refused, never loaded unsafely
    sd = safe_load(p, arg=arg)
    for key in ("model", "state_dict", "model_state"):
        if isinstance(sd, dict) and key in sd and isinstance(sd[key], dict):
            sd = sd[key]
    if not isinstance(sd, dict):
        raise ValueError(f"{arg}: {str(p)!r} holds a {type(sd).__name__}, expected a state dict")
    sd = {k.removeprefix("module."): v for k, v in sd.items()}
    if isinstance(model, ViTTeacher) and not any(k.startswith("vit.") for k in sd):
        target = model.vit
    else:
        target = model
    try:
        target.load_state_dict(sd, strict=True)
    except RuntimeError as e:
        raise ValueError(f"{arg}: {str(p)!r} does not fit {type(target).__name__}: {e}") from e
    return model


def create_model(
    name: str,
    *,
    num_classes: int,
    weights: str | os.PathLike | None = None,
    require_weights: bool = False,
    frozen: bool | None = None,
    **kwargs,
) -> nn.Module:
    """Build the student or teacher called ``name`` (see :func:`list_models`).

    Args:
        num_classes: classifier width.
        weights: a local checkpoint to load (strictly).
        require_weights: raise when ``weights`` is missing (teachers for distillation: a random teacher
            would silently make distillation meaningless, as the reference's random ViT teacher did).
        frozen: freeze (eval + no grad); default True for teachers, False for students (pass False
            to train a teacher).
        kwargs: builder options (``cnf``, ``in_channels``, ``dim``, ``depth``, ``heads``, ``pool_stages``,
            neuron kwargs for students).

    Teachers come back frozen in eval mode; students in train mode, multi-step.
    """
    if name in STUDENTS:
        model = STUDENTS[name][0](num_classes=num_classes, **kwargs)
    elif name in TEACHERS:
        model = TEACHERS[name][0](num_classes=num_classes, **kwargs)
    else:
        raise KeyError(
            f"name: unknown model {name!r}; students: {sorted(STUDENTS)}, teachers: {sorted(TEACHERS)}"
        )
    if weights is None and require_weights:
        raise FileNotFoundError(
            f"weights: the teacher {name!r} needs a local weights file (--teacher-weights PATH), "
            "or train one first with --teacher train"
        )
    if weights is not None:
        load_weights(model, weights)
    if frozen if frozen is not None else name in TEACHERS:
        freeze(model)
    return model
