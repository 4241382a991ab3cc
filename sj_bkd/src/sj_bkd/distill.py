"""The training wrapper: one ``nn.Module`` holding the student and the distillation head.

``sj_common.engine.fit`` optimizes every parameter of the module it gets and wraps it in DDP, so the
student and the head live in one module (the reference trained the head outside DDP: each rank trained
its own, differently initialised head). The teacher is held *outside* the module tree: it is moved with the
module (``.to``), but it is not in ``parameters()``, ``state_dict()`` (checkpoints stay student-sized),
``train()`` (it stays in eval) or DDP (no all-reduce through it), and it runs under ``no_grad``.

In training mode ``forward`` returns everything the loss needs; in eval mode the student alone runs and
the head is unused (dropped at test time), so ``evaluate`` measures the student only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from spikingjelly.activation_based import functional

from .head import AlignedMSEHead, BlurredDistillationHead, LayerwiseMSEHead
from .logits import kd_loss, wsld_loss
from .taps import FeatureTap

__all__ = ["MODES", "DistillationModel", "distill_step", "student_input"]

#: ``none``: CE only; ``kd``: CE + Hinton KD; ``wsld``: CE + WSLD; ``bkd``: CE + blurred feature loss;
#: ``mixed``: CE + BKD + WSLD (the paper's main setting); ``kdsnn``: CE + aligned feature MSE (baseline);
#: ``lasnn``: CE + that MSE summed over several stage pairs (baseline; ``student_layers``/``teacher_layers``).
MODES = ("none", "kd", "wsld", "bkd", "mixed", "kdsnn", "lasnn")
_FEATURE_MODES = ("bkd", "mixed", "kdsnn", "lasnn")
_LOGIT_MODES = ("kd", "wsld", "mixed")


def student_input(x: torch.Tensor, T: int, sequence_input: bool) -> torch.Tensor:
    """Loader batch -> the student's ``[T, B, ...]``.

    Static images ``[B, C, H, W]`` are repeated ``T`` times (direct encoding); sequences ``[B, T, ...]``
    (event frames) are transposed.
    """
    if sequence_input:
        if x.dim() < 3:
            raise ValueError(
                f"x: expected frames [B, T, ...] (sequence_input=True), got shape {tuple(x.shape)}"
            )
        return x.transpose(0, 1).contiguous()
    if x.dim() != 4:
        raise ValueError(
            f"x: expected images [B, C, H, W] (sequence_input=False), got shape {tuple(x.shape)}"
        )
    return x.unsqueeze(0).expand(T, *x.shape).contiguous()


class DistillationModel(nn.Module):
    """Student + blurred distillation head, with a frozen teacher alongside.

    Args:
        student: a multi-step SpikingJelly network, ``[T, B, ...] -> [T, B, K]``.
        teacher: an ANN ``[B, ...] -> [B, K]`` (or, with ``teacher_T``, an SNN teacher ``[T', B, ...] ->
            [T', B, K]``, as in the CIFAR10-DVS rows); frozen here. ``None`` only for ``mode='none'``.
        T: student time steps for static inputs.
        mode: one of :data:`MODES`.
        student_layer / teacher_layer: names of the tapped layers (see :mod:`sj_bkd.taps`).
        student_layers / teacher_layers: ``mode='lasnn'`` only: equally long lists of layer names, stage
            ``k`` of the student matched to stage ``k`` of the teacher at the same resolution (e.g.
            ``['layer1', ..., 'layer4']`` for both SEW-ResNet and ResNet). Without them ``lasnn`` uses
            the single ``student_layer``/``teacher_layer`` pair (then it equals ``kdsnn``).
        example_input: one loader batch's ``x``; with it the head's channels are inferred by a dry run
            (and layer/shape mismatches fail here, before training). Otherwise pass ``student_channels``
            and ``teacher_channels`` (for ``lasnn``: lists, one entry per stage).
        teacher_kind: ``'cnn'`` (map to map) or ``'vit'`` (pre-logits vector) for the head.
        alpha, lam, use_clip, token_grid: head options (see :class:`BlurredDistillationHead`).
        tau, beta: WSLD temperature and weight; ``kd_tau``: Hinton-KD temperature.
        sequence_input: loader ``x`` is ``[B, T, ...]`` frames rather than a static image.
        teacher_input_size: resize the teacher's (static) input to this size (e.g. 224 for a ViT teacher
            on 32x32 CIFAR); ``teacher_interpolation`` 'bicubic' (the authors' CIFAR-10 script) or 'bilinear'.
        teacher_T: the SNN teacher's time steps; its input is the batch's teacher frames.

    ``forward(x, target=None, x_teacher=None)`` returns a dict: ``logits`` ``[B, K]`` (student, mean over
    T), ``per_step`` ``[T, B, K]``; in training with a teacher also ``teacher_logits`` and ``losses``
    (``{'bkd': ..., 'wsld': ..., ...}``; ``'kdsnn'`` / ``'lasnn'`` for the baselines; each a scalar, the
    CE is the step function's).
    """

    def __init__(
        self,
        student: nn.Module,
        teacher: nn.Module | None,
        *,
        T: int,
        mode: str = "mixed",
        student_layer: str | None = None,
        teacher_layer: str | None = None,
        student_layers: Sequence[str] | None = None,
        teacher_layers: Sequence[str] | None = None,
        example_input: torch.Tensor | None = None,
        student_channels: int | Sequence[int] | None = None,
        teacher_channels: int | Sequence[int] | None = None,
        teacher_kind: str = "cnn",
        alpha: float | None = None,
        lam: float = 0.15,
        use_clip: bool = False,
        token_grid: tuple[int, int] | None = None,
        tau: float = 2.0,
        beta: float = 1.0,
        kd_tau: float = 4.0,
        sequence_input: bool = False,
        teacher_input_size: int | None = None,
        teacher_interpolation: str = "bilinear",
        teacher_T: int | None = None,
    ) -> None:
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"mode: expected one of {MODES}, got {mode!r}")
        if not isinstance(T, int) or T < 1:
            raise ValueError(f"T: expected an int >= 1, got {T!r}")
        if teacher is None and mode != "none":
            raise ValueError(f"teacher: mode={mode!r} needs a teacher, got None")
        self.student = student
        self.T, self.mode, self.sequence_input = T, mode, sequence_input
        self.tau, self.beta, self.kd_tau = tau, beta, kd_tau
        self.teacher_input_size, self.teacher_interpolation, self.teacher_T = (
            teacher_input_size,
            teacher_interpolation,
            teacher_T,
        )
        # Outside the module tree on purpose (see the module docstring).
        self.__dict__["teacher"] = None
        # one tap per distilled stage: a single one, except in lasnn mode
        self.student_taps: list[FeatureTap] = []
        self.teacher_taps: list[FeatureTap] = []
        self.head: nn.Module | None = None
        if mode != "lasnn" and (student_layers is not None or teacher_layers is not None):
            raise ValueError(
                f"student_layers/teacher_layers: only mode='lasnn' taps several layers, got mode={mode!r} "
                "(pass student_layer/teacher_layer)"
            )
        if teacher is None or mode == "none":
            return
        teacher.eval().requires_grad_(False)
        self.__dict__["teacher"] = teacher
        if mode not in _FEATURE_MODES:
            return
        # one tap pair per distilled stage: several in lasnn mode, one otherwise
        if mode == "lasnn":
            s_names, t_names = self._stage_names(
                student_layer, teacher_layer, student_layers, teacher_layers, teacher_kind
            )
        elif not student_layer or not teacher_layer:
            raise ValueError(f"student_layer/teacher_layer: mode={mode!r} needs both layer names")
        else:
            s_names, t_names = [student_layer], [teacher_layer]
        self.student_taps = [FeatureTap(student, n) for n in s_names]
        self.teacher_taps = [FeatureTap(teacher, n, detach=True) for n in t_names]
        if example_input is not None:
            student_channels, teacher_channels = self._infer_channels(example_input, teacher_kind)
            if mode != "lasnn":
                (student_channels,), (teacher_channels,) = student_channels, teacher_channels
        if student_channels is None or teacher_channels is None:
            raise ValueError(
                "student_channels/teacher_channels: pass both (for lasnn one entry per stage), "
                "or example_input to infer them"
            )
        if mode == "lasnn":
            self.head = LayerwiseMSEHead(
                student_channels, teacher_channels, alpha=alpha, token_grid=token_grid
            )
        else:
            common = dict(teacher_kind=teacher_kind, alpha=alpha, token_grid=token_grid)
            if mode == "kdsnn":  # no blur, no generator, no clip
                self.head = AlignedMSEHead(student_channels, teacher_channels, **common)
            else:
                self.head = BlurredDistillationHead(
                    student_channels, teacher_channels, lam=lam, use_clip=use_clip, **common
                )

    # -- plumbing ---------------------------------------------------------------------------------
    @property
    def teacher(self) -> nn.Module | None:
        return self.__dict__["teacher"]

    @property
    def student_tap(self) -> FeatureTap | None:
        """The student's tap in the single-layer feature modes (``None`` otherwise)."""
        return self.student_taps[0] if self.mode != "lasnn" and self.student_taps else None

    @property
    def teacher_tap(self) -> FeatureTap | None:
        """The teacher's tap in the single-layer feature modes (``None`` otherwise)."""
        return self.teacher_taps[0] if self.mode != "lasnn" and self.teacher_taps else None

    @staticmethod
    def _stage_names(student_layer, teacher_layer, student_layers, teacher_layers, teacher_kind):
        """The lasnn stage pairs: checked lists of student and teacher layer names of equal length."""
        if teacher_kind != "cnn":
            raise ValueError(
                f"teacher_kind: mode='lasnn' matches feature maps stage by stage, expected 'cnn', "
                f"got {teacher_kind!r}"
            )
        names = []
        for arg, many, one in (
            ("student_layers", student_layers, student_layer),
            ("teacher_layers", teacher_layers, teacher_layer),
        ):
            if many is None:
                if not one:
                    raise ValueError(
                        f"{arg}: mode='lasnn' needs a list of layer names (or {arg[:-1]}), got None"
                    )
                many = [one]
            if isinstance(many, str) or not isinstance(many, Sequence) or len(many) == 0:
                raise ValueError(f"{arg}: expected a non-empty list of layer names, got {many!r}")
            names.append(list(many))
        s_names, t_names = names
        if len(s_names) != len(t_names):
            raise ValueError(
                f"teacher_layers: expected {len(s_names)} layer names (one per student_layers entry "
                f"{s_names}), got {len(t_names)}: {t_names}"
            )
        return s_names, t_names

    def _apply(self, fn, *args, **kwargs):
        super()._apply(fn, *args, **kwargs)
        if self.teacher is not None:
            self.teacher._apply(fn, *args, **kwargs)
        return self

    def train(self, mode: bool = True):
        super().train(mode)
        if self.teacher is not None:
            self.teacher.eval()  # always: BN statistics and dropout of the teacher never change
        return self

    @torch.no_grad()
    def _infer_channels(self, x: torch.Tensor, teacher_kind: str) -> tuple[list[int], list[int]]:
        """A dry run on (at most) two samples: the channels of every tapped stage (student, teacher).

        Every tapped feature must have a layout the head understands, checked against the dry run's
        known time steps and batch: the student's ``[T, B, C, H, W]`` (map) or ``[T, B, N, D]``
        (tokens); the teacher's, after :meth:`_pop_teacher_features`, ``[B, C, H, W]`` / ``[B, N, D]``
        (``teacher_kind='cnn'``) or ``[B, D]`` (``'vit'``). Anything else (e.g. a feature whose time
        and batch axes are flattened together) is a clear error naming the layer, not a width read from
        the wrong axis. A stage pair of different spatial sizes is an error too."""
        was = self.student.training
        self.student.eval()
        x = x[:2]
        try:
            xs = student_input(x, self.T, self.sequence_input)
            self.student(xs)
            fss = [tap.pop() for tap in self.student_taps]
            self._teacher_forward(x, None)
            fts = self._pop_teacher_features()
        finally:
            functional.reset_net(self.student)
            self.student.train(was)
        t, b = xs.shape[0], xs.shape[1]
        s_arg, t_arg = (
            ("student_layers", "teacher_layers")
            if self.mode == "lasnn"
            else ("student_layer", "teacher_layer")
        )
        cs_all, ct_all = [], []
        for i, (fs, ft, s_tap, t_tap) in enumerate(zip(fss, fts, self.student_taps, self.teacher_taps)):
            stage = f"stage {i} ({s_tap.name!r} -> {t_tap.name!r})"
            if fs.dim() not in (4, 5) or tuple(fs.shape[:2]) != (t, b):
                raise ValueError(
                    f"{s_arg}: {stage}: expected the student's feature as a multi-step map [T, B, C, H, W] or "
                    f"tokens [T, B, N, D] with T={t}, B={b} (the dry run's), got shape {tuple(fs.shape)}"
                )
            # [T, B, C, H, W] maps -> C at dim 2; [T, B, N, D] tokens -> D last
            cs = fs.shape[2] if fs.dim() == 5 else fs.shape[-1]
            dims = (2,) if teacher_kind == "vit" else (3, 4)
            if ft.dim() not in dims or ft.shape[0] != b:
                want = (
                    "a vector [B, D]" if teacher_kind == "vit" else "a map [B, C, H, W] or tokens [B, N, D]"
                )
                raise ValueError(
                    f"{t_arg}: {stage}: teacher_kind={teacher_kind!r} expects {want} with B={b} "
                    f"(an SNN teacher's [T', B, ...] averaged over its teacher_T steps), "
                    f"got shape {tuple(ft.shape)}"
                )
            # [B, C, H, W] maps and [B, D] vectors -> dim 1; [B, N, D] tokens -> D last
            ct = ft.shape[-1] if ft.dim() == 3 else ft.shape[1]
            if fs.dim() == 5 and ft.dim() == 4 and fs.shape[-2:] != ft.shape[-2:]:
                raise ValueError(
                    f"{t_arg}: {stage}: expected the student's spatial size "
                    f"{tuple(fs.shape[-2:])}, got {tuple(ft.shape[-2:])}; tap layers of equal resolution"
                )
            cs_all.append(int(cs))
            ct_all.append(int(ct))
        return cs_all, ct_all

    def _pop_teacher_features(self) -> list[torch.Tensor]:
        """The teacher's tapped features of its last forward, one per stage.

        An SNN teacher (``teacher_T``) records ``[T', B, ...]``: averaged over its time steps here, as
        its logits are, so the head always gets a static teacher feature ``[B, ...]``."""
        feats = [tap.pop() for tap in self.teacher_taps]
        if self.teacher_T is None:
            return feats
        out = []
        for tap, f in zip(self.teacher_taps, feats):
            if f.dim() < 3:
                raise ValueError(
                    f"teacher_layer: the SNN teacher's (teacher_T={self.teacher_T}) layer {tap.name!r} should "
                    f"give a multi-step feature [T', B, ...], got shape {tuple(f.shape)}"
                )
            out.append(f.mean(0))
        return out

    @torch.no_grad()
    def _teacher_forward(self, x: torch.Tensor, x_teacher: torch.Tensor | None) -> torch.Tensor:
        teacher = self.teacher
        if self.teacher_T is not None:  # an SNN teacher on its own (longer) frame sequence
            xt = x_teacher if x_teacher is not None else x
            z = teacher(student_input(xt, self.teacher_T, True)).mean(0)
            functional.reset_net(teacher)
            return z
        xt = x_teacher if x_teacher is not None else x
        if self.teacher_input_size is not None and xt.shape[-1] != self.teacher_input_size:
            kw = {} if self.teacher_interpolation == "nearest" else {"align_corners": False}
            xt = F.interpolate(xt, size=self.teacher_input_size, mode=self.teacher_interpolation, **kw)
        return teacher(xt)

    # -- forward ----------------------------------------------------------------------------------
    def forward(
        self, x: torch.Tensor, target: torch.Tensor | None = None, x_teacher: torch.Tensor | None = None
    ) -> dict[str, Any]:
        per_step = self.student(student_input(x, self.T, self.sequence_input))
        if per_step.dim() != 3:
            raise ValueError(f"student output: expected [T, B, K], got shape {tuple(per_step.shape)}")
        out: dict[str, Any] = {"logits": per_step.mean(0), "per_step": per_step}
        if not self.training or self.teacher is None:
            for tap in self.student_taps:
                tap.clear()
            return out
        z_t = self._teacher_forward(x, x_teacher)
        out["teacher_logits"] = z_t
        losses: dict[str, torch.Tensor] = {}
        if self.mode == "lasnn":
            losses["lasnn"] = self.head(
                [tap.pop() for tap in self.student_taps], self._pop_teacher_features()
            )
        elif self.head is not None:
            (ft,) = self._pop_teacher_features()
            losses["bkd" if self.mode != "kdsnn" else "kdsnn"] = self.head(self.student_tap.pop(), ft)
        if self.mode in ("wsld", "mixed"):
            if target is None:
                raise ValueError(f"target: mode={self.mode!r} (WSLD) needs the labels, got None")
            losses["wsld"] = wsld_loss(out["logits"], z_t, target, tau=self.tau, beta=self.beta)
        elif self.mode == "kd":
            losses["kd"] = kd_loss(out["logits"], z_t, tau=self.kd_tau)
        out["losses"] = losses
        return out


def distill_step(model: nn.Module, batch: Any, ctx) -> Any:
    """Engine step for :class:`DistillationModel`: ``(x, y)`` or ``(x_student, x_teacher, y)`` batches.

    loss = CE(student logits, y) (label smoothing from the config) + every distillation term; each term
    is logged (``ce``, ``bkd``, ``wsld``, ``kd``, ``kdsnn``, ``lasnn``).
    """
    from sj_common.engine import StepOutput

    if not isinstance(batch, (tuple, list)) or len(batch) not in (2, 3):
        raise ValueError("batch: expected (x, y) or (x_student, x_teacher, y)")
    x, y = batch[0], batch[-1]
    x_teacher = batch[1] if len(batch) == 3 else None
    out = model(x, y, x_teacher)
    smoothing = ctx.config.label_smoothing if ctx.train else 0.0
    ce = F.cross_entropy(out["logits"].float(), y, label_smoothing=smoothing)
    # logs: detached 0-dim tensors, summed on the device by the engine (float() here: a host sync per step)
    loss, logs = ce, {"ce": ce.detach()}
    for k, v in out.get("losses", {}).items():
        loss = loss + v
        logs[k] = v.detach()
    return StepOutput(loss=loss, logits=out["logits"], target=y, logs=logs)
