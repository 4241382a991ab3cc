"""Class-matched static/event pairs for static-to-event transfer (He et al., AAAI 2024).

* :func:`encode_static`: a static image -> the event network's input ``[T, 2, H, W]``: optional bilinear
  resize, then the HSV ``V`` channel (``max(R, G, B)`` in [0, 1]; a grayscale image is its own V), copied to
  both polarity channels and all ``T`` steps (a constant current, not Poisson). No normalisation, no
  augmentation, no rescaling against event counts (the method's choice, kept for fidelity: static
  values in [0, 1] against raw event counts).
* :class:`PairedStaticEvent`: every event sample of class ``c`` comes with a random static image of class
  ``c``, drawn afresh every epoch (the two data sets are not instance-aligned), after keeping a
  stratified, seeded ``train_ratio`` of the event samples.

Fixes against the reference: static partners are drawn from per-class pools built from ``static_set.targets``
(never by label value, as its CIFAR10-DVS pairing did, never by class offsets of another data set, which
shifted its N-Caltech101 pairs by 32 images from class 1 on), and each draw is a function of
``(seed, epoch, index)`` rather than of a running generator, so DataLoader workers and DDP ranks never repeat
each other's partners and a resumed run draws what it drew before.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from .splits import stratified_subset

__all__ = ["encode_static", "PairedStaticEvent"]


_STREAM = 0x5EED  # keeps the partner draws apart from other streams seeded by the same numbers


def _as_float_image(image) -> torch.Tensor:
    if hasattr(image, "mode") and hasattr(image, "size") and not hasattr(image, "dim"):  # PIL image
        from torchvision.transforms.functional import pil_to_tensor

        image = pil_to_tensor(image)
    x = torch.as_tensor(image)
    if x.dtype == torch.uint8:
        return x.to(torch.float32) / 255.0
    if not x.is_floating_point():
        raise TypeError(f"image must be float in [0, 1] or uint8, got dtype {x.dtype}")
    return x.to(torch.float32)


def encode_static(image, T: int, *, size=None, use_hsv: bool = True) -> torch.Tensor:
    """Static image -> event-shaped input, as the method encodes it.

    Args:
        image: ``[C, H, W]`` or a batch ``[B, C, H, W]``, float in [0, 1] (uint8 and PIL are converted);
            ``C`` is 1 (grayscale) or 3 (RGB).
        T: number of time steps.
        size: ``None`` (keep), an int or ``(H, W)``: bilinear resize (antialiased, like PIL's ``Resize``)
            applied first, as the reference resizes the image before the HSV conversion.
        use_hsv: ``True``: ``V = max(R, G, B)``; ``False``: the last channel (blue for RGB), the paper's
            "no HSV" ablation. For ``C == 1`` both give the image itself.

    Returns:
        ``[T, 2, H', W']`` (or ``[B, T, 2, H', W']``) float32, every step and both polarities equal to ``V``.
    """
    if int(T) != T or T < 1:
        raise ValueError(f"T must be a positive integer, got {T!r}")
    x = _as_float_image(image)
    batched = x.dim() == 4
    if x.dim() not in (3, 4):
        raise ValueError(f"image must be [C, H, W] or [B, C, H, W], got shape {tuple(x.shape)}")
    if not batched:
        x = x.unsqueeze(0)
    if x.shape[1] not in (1, 3):
        raise ValueError(f"image must have 1 (grayscale) or 3 (RGB) channels, got shape {tuple(x.shape)}")
    if size is not None:
        hw = (int(size), int(size)) if isinstance(size, int) else tuple(int(s) for s in size)
        if len(hw) != 2 or min(hw) < 1:
            raise ValueError(f"size must be an int or (H, W), got {size!r}")
        if tuple(x.shape[-2:]) != hw:
            x = F.interpolate(x, size=hw, mode="bilinear", align_corners=False, antialias=True).clamp_(0, 1)
    v = x.amax(dim=1) if use_hsv else x[:, -1]  # [B, H, W]
    out = v[:, None, None].expand(-1, int(T), 2, -1, -1).contiguous()
    return out if batched else out[0]


def _num_classes(ds) -> int:
    classes = getattr(ds, "classes", None)
    if classes is not None and len(classes):
        return len(classes)
    return int(np.max(ds.targets)) + 1


class PairedStaticEvent(Dataset):
    """Event samples, each with a random static image of the same class.

    Args:
        static_set: data set of ``(image [C, H, W], label)`` with ``.targets`` (and ``.classes``).
        event_set: data set of ``(frames [T, 2, H, W], label)`` with ``.targets`` (and ``.classes``), e.g.
            :class:`~sj_common.data.MNIST5kEvents` or ``event_dataset(...)``. Labels are matched by index: class
            ``c`` of one set must be class ``c`` of the other (align class orders by name beforehand).
        T: time steps of the event frames; the static image is repeated ``T`` times.
        train_ratio: in (0, 1]: the fraction of each class's event samples kept
            (:func:`~sj_common.data.stratified_subset`, seeded by ``subset_seed``); the static set is used whole.
        seed: seeds the partner draws (and the subset when ``subset_seed`` is None).
        subset_seed: seeds the ``train_ratio`` subset alone, so that runs with different training seeds can
            share one event subset, as the reference's fixed per-class subsets do (default: ``seed``).
        size: resize of the static image (int or ``(H, W)``), e.g. the event frame size; ``None`` keeps it.
        use_hsv: see :func:`encode_static`.

    Item ``i``: ``(static_frames float32 [T, 2, H, W], event_frames float32 [T, 2, H, W], label int)``.
    Attributes: ``.targets`` (int64, the kept event samples' labels), ``.classes``, ``.indices`` (kept
    indices into ``event_set``), ``.pools`` (class -> static indices).

    Randomness: the partner of item ``i`` is drawn from ``numpy.random.default_rng([seed, ..., epoch, i,
    draw])``: a function of the data set's seed, the epoch (:meth:`set_epoch`; ``fit`` calls it before every
    epoch, call it yourself in your own loop, or every epoch repeats epoch 0's partners) and the index, no
    running state. So DataLoader workers, DDP ranks (which load different indices) and a resumed run need
    no seeding of their own: the same ``(epoch, i)`` gets the same partner in any process, a new epoch new
    ones. An index from :class:`~sj_common.data.ClassBalancedSampler` (a :class:`~sj_common.data.DrawIndex`)
    adds its ``draw``, so a sample drawn several times in an epoch gets a partner for every draw.
    """

    def __init__(
        self,
        static_set,
        event_set,
        *,
        T: int,
        train_ratio: float = 1.0,
        seed: int = 0,
        size=None,
        use_hsv: bool = True,
        subset_seed: int | None = None,
    ):
        if int(T) != T or T < 1:
            raise ValueError(f"T must be a positive integer, got {T!r}")
        for name, ds in (("static_set", static_set), ("event_set", event_set)):
            if not hasattr(ds, "targets"):
                raise TypeError(
                    f"{name} must expose .targets (one label per sample), {type(ds).__name__} has none"
                )
        n_static, n_event = _num_classes(static_set), _num_classes(event_set)
        if n_static != n_event:
            raise ValueError(
                f"class sets differ: static_set has {n_static} classes, event_set has {n_event} classes"
            )
        train_ratio = float(train_ratio)
        if not 0.0 < train_ratio <= 1.0:
            raise ValueError(f"train_ratio must be in (0, 1], got {train_ratio}")
        self.static_set, self.event_set = static_set, event_set
        self.T, self.train_ratio, self.seed = int(T), train_ratio, int(seed)
        self.size, self.use_hsv = size, use_hsv
        event_targets = np.asarray(event_set.targets, dtype=np.int64)
        self.subset_seed = self.seed if subset_seed is None else int(subset_seed)
        self.indices = stratified_subset(event_targets, train_ratio, self.subset_seed)
        self.targets = event_targets[self.indices]
        classes = getattr(event_set, "classes", None)
        self.classes = list(classes) if classes is not None else [str(c) for c in range(n_event)]
        static_targets = np.asarray(static_set.targets, dtype=np.int64)
        self.pools: dict[int, np.ndarray] = {}
        for c in np.unique(self.targets):
            pool = np.flatnonzero(static_targets == c)
            if pool.size == 0:
                raise ValueError(
                    f"static_set has no sample of class {int(c)} ({self.classes[c]!r}), which event_set has; "
                    f"every event class needs at least one static image"
                )
            self.pools[int(c)] = pool
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Draw the partners of ``epoch`` from now on (the engine calls it before every epoch)."""
        if int(epoch) != epoch or epoch < 0:
            raise ValueError(f"epoch: expected an integer >= 0, got {epoch!r}")
        self.epoch = int(epoch)

    def partner(self, i: int) -> int:
        """The index into ``static_set`` paired with item ``i`` in the current epoch (what ``__getitem__`` uses).

        ``i`` may be a :class:`~sj_common.data.DrawIndex`; its ``draw`` then keys the draw too.
        """
        n, k = len(self), int(i)
        if not -n <= k < n:
            raise IndexError(f"i: expected an index in [0, {n}), got {k}")
        k %= n
        draw = getattr(i, "draw", -1) + 1  # 0: a plain index
        key = [self.seed & (2**64 - 1), _STREAM, self.epoch, k, draw]
        pool = self.pools[int(self.targets[k])]
        return int(pool[np.random.default_rng(key).integers(len(pool))])

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int):
        label = int(self.targets[i])
        ev, ev_label = self.event_set[int(self.indices[i])]
        if int(ev_label) != label:
            raise ValueError(
                f"event_set[{int(self.indices[i])}] has label {int(ev_label)}, its .targets says {label}"
            )
        ev = torch.as_tensor(ev, dtype=torch.float32)
        if ev.dim() != 4 or ev.shape[0] != self.T or ev.shape[1] != 2:
            raise ValueError(f"event frames must be [T={self.T}, 2, H, W], got shape {tuple(ev.shape)}")
        j = self.partner(i)
        img, st_label = self.static_set[j]
        if int(st_label) != label:
            raise ValueError(f"static_set[{j}] has label {int(st_label)}, its .targets says {label}")
        return encode_static(img, self.T, size=self.size, use_hsv=self.use_hsv), ev, label

    def __repr__(self) -> str:
        return (
            f"PairedStaticEvent(n={len(self)}, T={self.T}, train_ratio={self.train_ratio}, seed={self.seed}, "
            f"size={self.size})"
        )
