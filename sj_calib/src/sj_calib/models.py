"""QCFS models of the paper's table (VGG-16, ResNet-20, ResNet-34) and a small CNN for MNIST-5k.

All use QCFS in place of ReLU and average pooling in place of max pooling (the method trains that way),
one QCFS module per activation site (each gets its own threshold), and keep conv+BN pairs in
``nn.Sequential`` so that :func:`sj_calib.fold_batchnorm` can fold them. torchvision models can be used
too: ``replace_relu_by_qcfs(replace_maxpool_by_avgpool(torchvision.models.vgg16_bn(...)))``.
"""

from __future__ import annotations

from torch import nn

from .qcfs import QCFS

__all__ = ["create_model", "small_vgg", "vgg16", "resnet20", "resnet34", "MODELS"]

_VGG16 = [64, 64, "P", 128, 128, "P", 256, 256, 256, "P", 512, 512, 512, "P", 512, 512, 512, "P"]


def _conv_bn(cin: int, cout: int, L: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout)), QCFS(L)]


def small_vgg(num_classes: int = 10, in_channels: int = 1, L: int = 4, width: int = 32) -> nn.Sequential:
    """conv32-conv32-avgpool-conv64-avgpool-fc for 28x28 inputs ``[B, 1, 28, 28]`` -> ``[B, K]``."""
    return nn.Sequential(
        *_conv_bn(in_channels, width, L),
        *_conv_bn(width, width, L),
        nn.AvgPool2d(2),
        *_conv_bn(width, 2 * width, L),
        nn.AvgPool2d(2),
        nn.Flatten(),
        nn.Linear(2 * width * 7 * 7, num_classes),
    )


def vgg16(num_classes: int = 100, in_channels: int = 3, L: int = 4, imagenet: bool = False) -> nn.Sequential:
    """VGG-16 with BN, QCFS and average pooling; dropout 0 as the reference.

    CIFAR (32x32): classifier 512-4096-4096-K; ImageNet (224x224): adaptive 7x7 average pool and
    25088-4096-4096-K. The exact classifier widths of the reference's CIFAR VGG-16 are [unverified].
    """
    feats: list[nn.Module] = []
    c = in_channels
    for v in _VGG16:
        if v == "P":
            feats.append(nn.AvgPool2d(2))
        else:
            feats += _conv_bn(c, v, L)
            c = v
    if imagenet:
        head = [nn.AdaptiveAvgPool2d(7), nn.Flatten(), nn.Linear(512 * 49, 4096)]
    else:
        head = [nn.Flatten(), nn.Linear(512, 4096)]
    head += [QCFS(L), nn.Linear(4096, 4096), QCFS(L), nn.Linear(4096, num_classes)]
    return nn.Sequential(*feats, *head)


class BasicBlock(nn.Module):
    """ResNet basic block ``[B, C, H, W] -> [B, C', H/s, W/s]``: QCFS(residual(x) + shortcut(x))."""

    def __init__(self, cin: int, cout: int, stride: int, L: int):
        super().__init__()
        self.residual = nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride, 1, bias=False),
            nn.BatchNorm2d(cout),
            QCFS(L),
            nn.Conv2d(cout, cout, 3, 1, 1, bias=False),
            nn.BatchNorm2d(cout),
        )
        self.shortcut = (
            nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
            if stride != 1 or cin != cout
            else nn.Identity()
        )
        self.act = QCFS(L)

    def forward(self, x):
        return self.act(self.residual(x) + self.shortcut(x))


class ResNet(nn.Module):
    """ResNet of :class:`BasicBlock` stages; ``[B, C, H, W] -> [B, K]``."""

    def __init__(self, widths, blocks, num_classes, in_channels, L, stem: str):
        super().__init__()
        if stem not in ("cifar", "imagenet"):
            raise ValueError(f"stem: expected 'cifar' or 'imagenet', got {stem!r}")
        if stem == "cifar":
            self.stem = nn.Sequential(*_conv_bn(in_channels, widths[0], L))
        else:  # ImageNet stem, max pooling replaced by average pooling (as everywhere in the method)
            self.stem = nn.Sequential(
                nn.Sequential(
                    nn.Conv2d(in_channels, widths[0], 7, 2, 3, bias=False), nn.BatchNorm2d(widths[0])
                ),
                QCFS(L),
                nn.AvgPool2d(3, 2, 1),
            )
        layers, c = [], widths[0]
        for i, (w, n) in enumerate(zip(widths, blocks)):
            for j in range(n):
                layers.append(BasicBlock(c, w, 2 if (j == 0 and i > 0) else 1, L))
                c = w
        self.layers = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c, num_classes)

    def forward(self, x):
        x = self.layers(self.stem(x))
        return self.fc(self.pool(x).flatten(1))


def resnet20(num_classes: int = 100, in_channels: int = 3, L: int = 4) -> ResNet:
    """CIFAR ResNet-20 (16-32-64 channels, 3x3 blocks). The reference's exact ResNet-20 is [unverified]."""
    return ResNet([16, 32, 64], [3, 3, 3], num_classes, in_channels, L, "cifar")


def resnet34(num_classes: int = 1000, in_channels: int = 3, L: int = 8, stem: str = "cifar") -> ResNet:
    """ResNet-34 ``[B, C, H, W] -> [B, K]``.

    ``stem='cifar'`` (default): 3x3 stride-1 conv, no pool, also on ImageNet. That is the QCFS/COS
    reference's ``resnet34`` (its released checkpoints map 251/251 keys onto this network, with identical
    outputs), so the paper's ImageNet ResNet-34 numbers come from this
    network; it is costly at 224x224 (stage 1 runs at full resolution). ``stem='imagenet'``: He et al.'s
    standard 7x7/2 conv + 3x3/2 pool (average pool here), 4x cheaper per stage but a different
    network from the paper's row, and the authors' checkpoints do not load into it."""
    return ResNet([64, 128, 256, 512], [3, 4, 6, 3], num_classes, in_channels, L, stem)


MODELS = {"small_vgg": small_vgg, "vgg16": vgg16, "resnet20": resnet20, "resnet34": resnet34}


def create_model(name: str, **kwargs) -> nn.Module:
    """Build a named model: one of :data:`MODELS`; ``kwargs`` go to its factory (as ``sj_bkd.create_model``)."""
    if name not in MODELS:
        raise ValueError(f"name: expected one of {sorted(MODELS)}, got {name!r}")
    return MODELS[name](**kwargs)
