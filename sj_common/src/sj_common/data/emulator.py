"""Saccade event emulator: a static image -> ON/OFF events, the way N-MNIST and N-Caltech101 were recorded.

Why our own: tonic reads recorded event data but does not synthesise events from images, and video-to-event
simulators (v2e, ESIM) need video, a GPU or a C++ build. N-MNIST / N-Caltech101 were recorded by moving an
ATIS camera in three saccades over a static image on a monitor (Orchard et al. 2015); this module replays
that motion over the image numerically.

The model, per sensor pixel:

1. Motion. The image moves along a triangle of three saccades (``saccade_us`` each, 100 ms by default as
   in N-MNIST), each with a smooth (raised-cosine) velocity profile that is zero at the vertices, so the
   event rate peaks in the middle of each saccade, as in the real recordings. The triangle is isosceles
   (base and height ``amplitude`` pixels, centred on the image): top-left -> bottom-centre -> top-right ->
   top-left. The sensor is the image zero-padded by ``pad`` pixels on each side (28x28 -> 34x34, the
   N-MNIST sensor); the moving image is sampled with bilinear sub-pixel interpolation.
2. Log intensity ``L = log(I + eps)``, ``I`` in [0, 1], sampled every ``dt_us`` (1 ms).
3. Events. Each pixel holds a reference ``L_ref`` (the first frame's ``L`` at the start). When
   ``|L - L_ref| >= theta`` it emits ``floor(|L - L_ref| / theta)`` events of polarity ``p = 1`` (ON, ``L``
   rose) or ``p = 0`` (OFF) and moves ``L_ref`` by that many ``theta`` towards ``L`` (the remainder is kept,
   as in v2e). ``theta`` is ``threshold``, per pixel ``threshold + threshold_sigma * N(0, 1)`` (fixed-pattern
   mismatch, clipped at ``0.01``).
4. Refractory period ``refractory_us``, on the simulation grid: a pixel emits at most
   ``max(1, dt_us // refractory_us)`` events per step and none within ``ceil(refractory_us / dt_us)``
   steps of its last event (changes during that time accumulate and fire afterwards).
5. Timestamps: the step's start plus a uniform random offset inside the step, in integer microseconds.
   Optional background noise: ``noise_rate_hz`` events per pixel and second, uniform in time, polarity
   and position.

Everything random (mismatch, timestamp jitter, noise) comes from one numpy Generator per image, seeded by
``seed``; the deterministic part is vectorised over all pixels of a batch of images (only the pixels that
the moving image can reach are simulated), so a 28x28 digit takes 1-2 ms of CPU in batches, 2-3 ms alone.

Output: a numpy structured array with tonic's N-MNIST dtype (``x, y, t, p``, all int64:
:data:`EVENT_DTYPE` == ``tonic.datasets.NMNIST.dtype``), sorted by ``t`` (microseconds), ``x`` the column and
``y`` the row of the sensor, sensor size ``(W + 2 pad, H + 2 pad, 2)`` in tonic's (x, y, p) order.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .eventarray import EVENT_DTYPE

__all__ = [
    "EVENT_DTYPE",
    "EMULATOR_PRESETS",
    "SaccadeEmulator",
    "emulate_saccades",
    "emulator_preset",
    "saccade_path",
]


def _as_image(image, name: str = "image") -> np.ndarray:
    """[H, W] or [1, H, W] uint8 (0..255) or float (0..1), numpy or torch -> float32 [H, W] in [0, 1]."""
    if hasattr(image, "detach"):  # torch tensor
        image = image.detach().cpu().numpy()
    a = np.asarray(image)
    if a.ndim == 3 and a.shape[0] == 1:
        a = a[0]
    if a.ndim != 2:
        raise ValueError(f"{name} must be a grayscale image [H, W] or [1, H, W], got shape {a.shape}")
    if a.dtype == np.uint8:
        return a.astype(np.float32) / 255.0
    if not np.issubdtype(a.dtype, np.floating):
        raise TypeError(f"{name} must be uint8 (0..255) or float (0..1), got dtype {a.dtype}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains NaN or inf")
    if a.size and (a.min() < 0.0 or a.max() > 1.0):
        raise ValueError(f"float {name} must lie in [0, 1], got range [{a.min():.3g}, {a.max():.3g}]")
    return a.astype(np.float32)


def saccade_path(t_us: np.ndarray, saccade_us: int, amplitude: float) -> np.ndarray:
    """Image offset ``(dx, dy)`` in pixels at times ``t_us`` (microseconds) -> float64 ``[len(t), 2]``.

    Three straight saccades of ``saccade_us`` each over an isosceles triangle with base and height
    ``amplitude`` centred on the origin (so the image stays centred on average), raised-cosine position
    profile (velocity zero at each vertex). Times beyond the third saccade stay at the start vertex.
    """
    a = float(amplitude)
    verts = np.array([[-a / 2, -a / 3], [0.0, 2 * a / 3], [a / 2, -a / 3], [-a / 2, -a / 3]])
    t = np.clip(np.asarray(t_us, dtype=np.float64), 0, 3 * saccade_us)
    j = np.minimum((t // saccade_us).astype(np.int64), 2)
    u = (t - j * saccade_us) / saccade_us
    s = (1.0 - np.cos(np.pi * u)) / 2.0
    return verts[j] + s[:, None] * (verts[j + 1] - verts[j])


@dataclass(frozen=True)
class SaccadeEmulator:
    """Static grayscale image -> N-MNIST-like ON/OFF events (see the module docstring for the model).

    ``SaccadeEmulator()(image, seed=0)`` returns a structured array with :data:`EVENT_DTYPE`, sorted by
    ``t``; ``.batch(images, seeds)`` does many images at once (same results as one by one). The defaults
    make emulated MNIST digits resemble a real N-MNIST recording (about
    4,000 events over ~300 ms, balanced ON/OFF, one event-rate peak per saccade).

    Args:
        threshold: contrast threshold ``theta`` in log-intensity units.
        threshold_sigma: std of the per-pixel threshold mismatch (absolute, log units); 0 = none.
        refractory_us: refractory period of a pixel, microseconds (applied on the ``dt_us`` grid).
        saccade_us: duration of each of the three saccades, microseconds.
        amplitude: base and height of the saccade triangle, pixels.
        pad: zero border added on each side of the image to form the sensor (28 -> 34 for N-MNIST).
        eps: added to the intensity in [0, 1] before the log (the monitor's black level).
        dt_us: simulation step, microseconds.
        noise_rate_hz: background-activity events per pixel per second (random position, time, polarity).
    """

    threshold: float = 0.25
    threshold_sigma: float = 0.02
    refractory_us: int = 1000
    saccade_us: int = 100_000
    amplitude: float = 3.0
    pad: int = 3
    eps: float = 0.1
    dt_us: int = 1000
    noise_rate_hz: float = 0.0

    #: Limits checked before anything is allocated (ValueError naming the parameter otherwise): the
    #: simulation's work buffers and padded images, and the expected number of events of one image.
    max_bytes: ClassVar[int] = 2**32
    max_events: ClassVar[int] = 2**26

    def __post_init__(self):
        # (rule, expected): every parameter a finite real number (not a bool), integers where stated
        checks = {
            "threshold": (lambda v: v > 0, "a finite number > 0"),
            "threshold_sigma": (lambda v: v >= 0, "a finite number >= 0"),
            "refractory_us": (lambda v: v >= 0 and v == int(v), "an integer >= 0"),
            "saccade_us": (lambda v: v > 0 and v == int(v), "an integer > 0"),
            "amplitude": (lambda v: v >= 0, "a finite number >= 0 (pixels)"),
            "pad": (lambda v: v >= 0 and v == int(v), "an integer >= 0"),
            "eps": (lambda v: v > 0, "a finite number > 0"),
            "dt_us": (lambda v: v > 0 and v == int(v), "an integer > 0"),
            "noise_rate_hz": (lambda v: v >= 0, "a finite number >= 0"),
        }
        for name, (ok, expected) in checks.items():
            v = getattr(self, name)
            good = (
                isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v) and bool(ok(v))
            )
            if not good:
                raise ValueError(f"SaccadeEmulator: {name} must be {expected}, got {v!r}")
        n_steps = self.saccade_us * 3 // self.dt_us
        if n_steps > 10**6:
            raise ValueError(
                f"SaccadeEmulator: saccade_us={self.saccade_us} / dt_us={self.dt_us} gives {n_steps} simulation "
                "steps, more than 1,000,000: raise dt_us or shorten saccade_us"
            )
        if self.saccade_us % self.dt_us:
            raise ValueError(
                f"SaccadeEmulator: saccade_us={self.saccade_us} must be a multiple of dt_us={self.dt_us}"
            )

    # -- public API -------------------------------------------------------------------------------
    def __call__(self, image, seed=None) -> np.ndarray:
        """One image ([H, W] / [1, H, W], uint8 or float in [0, 1]) -> events. ``seed=None``: not reproducible."""
        return self.batch([image], [seed])[0]

    def sensor_size(self, image_shape: Sequence[int]) -> tuple[int, int, int]:
        """tonic-style ``(W, H, 2)`` sensor size for images of shape ``[H, W]`` (or ``[1, H, W]``)."""
        h, w = tuple(image_shape)[-2:]
        return (w + 2 * self.pad, h + 2 * self.pad, 2)

    @property
    def duration_us(self) -> int:
        """Length of the three saccades, microseconds (events have ``0 <= t < duration_us``)."""
        return 3 * self.saccade_us

    def params(self) -> dict:
        """The parameters as a plain dict (JSON-able)."""
        return dataclasses.asdict(self)

    def params_hash(self) -> str:
        """A short stable hash of the parameters (cache keys)."""
        blob = json.dumps(self.params(), sort_keys=True).encode()
        return hashlib.sha1(blob).hexdigest()[:12]

    def batch(self, images, seeds: Sequence | None = None) -> list[np.ndarray]:
        """Many images of one shape -> one event array per image.

        Args:
            images: ``[B, H, W]`` / ``[B, 1, H, W]`` array or tensor, or a sequence of ``[H, W]`` images.
            seeds: one seed per image (anything ``np.random.default_rng`` takes, e.g. ``[seed, index]``),
                or ``None`` for unseeded. Image ``b``'s events depend only on the image and ``seeds[b]``.
        """
        if hasattr(images, "detach"):
            images = images.detach().cpu().numpy()
        imgs = [_as_image(im, f"images[{i}]") for i, im in enumerate(images)]
        if not imgs:
            return []
        shapes = {im.shape for im in imgs}
        if len(shapes) != 1:
            raise ValueError(f"images must all have one shape, got {sorted(shapes)}")
        if seeds is None:
            seeds = [None] * len(imgs)
        if len(seeds) != len(imgs):
            raise ValueError(f"seeds must have one entry per image: {len(imgs)} images, {len(seeds)} seeds")
        return self._simulate(np.stack(imgs), list(seeds))

    # -- the simulation ---------------------------------------------------------------------------
    _chunk_elems = 40_000  # pixels simulated at once: bounds memory (~12 bytes per pixel and step)

    def _simulate(self, imgs: np.ndarray, seeds: list) -> list[np.ndarray]:
        B, H, W = imgs.shape
        p = int(self.pad)
        Hs, Ws = H + 2 * p, W + 2 * p
        n_steps = self.duration_us // self.dt_us
        # Offsets at t = 0, dt, ..., n_steps * dt. Sensor pixel (y, x) sees the image at (y - dy, x - dx).
        path = saccade_path(np.arange(n_steps + 1) * self.dt_us, self.saccade_us, self.amplitude)
        m = int(math.ceil(np.abs(path).max())) + 1  # extra zero margin so every shift is a slice
        Hq, Wq = Hs + 2 * m, Ws + 2 * m
        self._check_size(B, H, W, Hq, Wq, n_steps)
        q = np.zeros((B, Hq, Wq), np.float32)
        q[:, m + p : m + p + H, m + p : m + p + W] = imgs
        oy, ox = m - path[:, 1], m - path[:, 0]  # top-left sampling position in q
        r0, c0 = np.floor(oy).astype(np.int64), np.floor(ox).astype(np.int64)
        gy, gx = (oy - r0).astype(np.float32), (ox - c0).astype(np.float32)

        # Only pixels that the moving image can reach ever change: simulate those, flattened over the batch.
        corners = sorted(set(zip(r0.tolist(), c0.tolist())))
        reach = np.zeros((B, Hs, Ws), bool)
        for r, c in corners:
            reach |= (
                (q[:, r : r + Hs, c : c + Ws] > 0)
                | (q[:, r : r + Hs, c + 1 : c + 1 + Ws] > 0)
                | (q[:, r + 1 : r + 1 + Hs, c : c + Ws] > 0)
                | (q[:, r + 1 : r + 1 + Hs, c + 1 : c + 1 + Ws] > 0)
            )
        n_img = reach.reshape(B, -1).sum(axis=1)

        # Per-image random parts, in a fixed order per image: mismatch, then jitter, then noise.
        rngs = [np.random.default_rng(s) for s in seeds]
        theta = np.full((B, Hs, Ws), self.threshold, np.float32)
        if self.threshold_sigma > 0:
            for b, rng in enumerate(rngs):
                theta[b] = np.maximum(rng.normal(self.threshold, self.threshold_sigma, (Hs, Ws)), 0.01)

        chunks, b0 = [], 0
        while b0 < B:  # chunks of whole images, about _chunk_elems simulated pixels each
            b1 = b0 + 1
            while b1 < B and n_img[b0 : b1 + 1].sum() <= self._chunk_elems:
                b1 += 1
            chunks.append((b0, b1))
            b0 = b1
        n_max = max(int(n_img[b0:b1].sum()) for b0, b1 in chunks)
        bufs = [np.empty((n_steps + 1) * n_max, np.float32) for _ in range(2)]  # reused by every chunk
        out = []
        for b0, b1 in chunks:
            elem = np.flatnonzero(reach[b0:b1])  # index into [b1 - b0, Hs, Ws]
            lvl, d = (bf[: (n_steps + 1) * elem.size].reshape(n_steps + 1, elem.size) for bf in bufs)
            self._levels(q[b0:b1].reshape(-1), elem, (Hs, Ws, Hq, Wq), (r0, c0, gx, gy), theta[b0:b1], lvl, d)
            eb, rem = np.divmod(elem, Hs * Ws)
            ey, ex = np.divmod(rem, Ws)
            flat = np.flatnonzero(d[1:] != 0)
            k, e = np.divmod(flat, elem.size)
            n = d[1:].reshape(-1)[flat]
            # group by image (stable: within an image the order stays (step, y, x) whatever the batch, so the
            # jitter drawn next is the same as for the image alone)
            img = eb[e].astype(np.int32)
            order = np.argsort(img, kind="stable")
            bounds = np.searchsorted(img[order], np.arange(b1 - b0 + 1))
            for b in range(b0, b1):
                sl = order[bounds[b - b0] : bounds[b - b0 + 1]]
                out.append(self._events(rngs[b], k[sl], ex[e[sl]], ey[e[sl]], n[sl], Hs, Ws))
        return out

    def _check_size(self, B, H, W, Hq, Wq, n_steps) -> None:
        """Refuse, before allocating, a run whose buffers or expected event count exceed the limits."""
        Hs, Ws = H + 2 * self.pad, W + 2 * self.pad
        per_chunk = max(self._chunk_elems, Hs * Ws)  # pixels simulated at once (one image at least)
        need = B * Hq * Wq * 4 + 2 * (n_steps + 1) * min(per_chunk, B * Hs * Ws) * 4 + B * Hs * Ws * 5
        if need > self.max_bytes:
            raise ValueError(
                f"SaccadeEmulator: {B} image(s) of {H}x{W} with amplitude={self.amplitude:g} and "
                f"{n_steps} steps need ~{need / 2**30:.3g} GiB, more than max_bytes={self.max_bytes / 2**30:.3g} "
                "GiB: lower amplitude (pixels), use fewer or smaller images, or raise dt_us"
            )
        noise = self.noise_rate_hz * self.duration_us * 1e-6 * Hs * Ws
        if noise > self.max_events:
            raise ValueError(
                f"SaccadeEmulator: noise_rate_hz={self.noise_rate_hz:g} gives ~{noise:.3g} noise events per "
                f"{Ws}x{Hs} sensor over {self.duration_us} us, more than max_events={self.max_events}: "
                "lower noise_rate_hz"
            )

    def _levels(self, qf, elem, sizes, motion, theta, level, d) -> None:
        """Fill ``d[1:]`` with the signed event counts per step ``[n_steps, len(elem)]`` (float32, integral)
        of the pixels ``elem``; ``level`` and ``d`` are ``[n_steps + 1, len(elem)]`` work buffers."""
        Hs, Ws, Hq, Wq = sizes
        r0, c0, gx, gy = motion
        eb, rem = np.divmod(elem, Hs * Ws)
        ey, ex = np.divmod(rem, Ws)
        base = eb * (Hq * Wq) + ey * Wq + ex
        n_steps = len(gx) - 1
        # L = log(I + eps) at every step into `level`: bilinear A + gx (B - A) + gy (C - A) + gx gy
        # (A - B - C + D), the four corners gathered once per run of steps with the same integer offset.
        lg, tmp2 = level, d
        gxy = gx * gy
        edges = np.flatnonzero((np.diff(r0) != 0) | (np.diff(c0) != 0)) + 1
        for k0, k1 in zip(np.r_[0, edges], np.r_[edges, n_steps + 1]):
            off = int(r0[k0]) * Wq + int(c0[k0])
            a, b = qf[base + off], qf[base + off + 1]
            cc, dd = qf[base + off + Wq], qf[base + off + Wq + 1]
            x, t = lg[k0:k1], tmp2[k0:k1]
            np.multiply(gx[k0:k1, None], (b - a)[None], out=x)
            x += a
            np.multiply(gy[k0:k1, None], (cc - a)[None], out=t)
            x += t
            np.multiply(gxy[k0:k1, None], (a - b - cc + dd)[None], out=t)
            x += t
            x += np.float32(self.eps)
            np.log(x, out=x)
        # x = (L - L0) / theta; the reference level k means L_ref = L0 + k theta.
        lg -= lg[0].copy()
        with np.errstate(over="ignore", invalid="ignore"):  # a tiny threshold: caught by the event count
            lg *= (1.0 / theta.reshape(-1)[elem]).astype(np.float32)
        hi = np.ceil(lg, out=d)
        np.floor(lg, out=lg)
        # New level = min(max(k, floor(x)), ceil(x)): it moves only when |L - L_ref| >= theta (x >= k + 1 or
        # x <= k - 1), by as many thresholds as were crossed, symmetrically for ON and OFF; then at most `cap`
        # per step, and not at all within `dead` steps of the last event (refractory period).
        cap = max(1, self.dt_us // self.refractory_us) if self.refractory_us > 0 else None
        dead = math.ceil(self.refractory_us / self.dt_us) if self.refractory_us > self.dt_us else 0
        tmp = np.empty(elem.size, np.float32)
        last = np.full(elem.size, -(2**30), np.int64) if dead else None
        for j in range(1, n_steps + 1):
            prev, cur = level[j - 1], level[j]  # cur holds floor(x_j), hi[j] ceil(x_j)
            np.maximum(prev, cur, out=cur)
            np.minimum(cur, hi[j], out=cur)
            if cap is not None:
                np.add(prev, cap, out=tmp)
                np.minimum(cur, tmp, out=cur)
                np.subtract(prev, cap, out=tmp)
                np.maximum(cur, tmp, out=cur)
            if dead:
                blocked = (j - last) < dead
                cur[blocked] = prev[blocked]
                last[cur != prev] = j
            np.subtract(cur, prev, out=d[j])  # hi[j] is no longer needed: d[j] = events of step j

    def _events(self, rng, k, x, y, n, Hs, Ws) -> np.ndarray:
        """Structured events from (step, x, y, signed count) plus jitter and noise, sorted by t."""
        total = float(np.abs(n).astype(np.float64).sum())
        if not total <= self.max_events:  # also NaN: a threshold so small that 1 / theta overflowed
            raise ValueError(
                f"SaccadeEmulator: threshold={self.threshold:g} gives ~{total:.3g} events for one image, more "
                f"than max_events={self.max_events}: raise threshold (or refractory_us)"
            )
        reps = np.abs(n).astype(np.int64)
        k, x, y = np.repeat(k, reps), np.repeat(x, reps), np.repeat(y, reps)
        pol = np.repeat((n > 0).astype(np.int64), reps)
        t = k.astype(np.int64) * self.dt_us + rng.integers(0, self.dt_us, size=k.size)  # step k+1 of diff
        cols = [(x, y, t, pol)]
        if self.noise_rate_hz > 0:
            nn = int(rng.poisson(self.noise_rate_hz * self.duration_us * 1e-6 * Hs * Ws))
            cols.append(
                (
                    rng.integers(0, Ws, nn),
                    rng.integers(0, Hs, nn),
                    rng.integers(0, self.duration_us, nn),
                    rng.integers(0, 2, nn),
                )
            )
        ev = np.empty(sum(len(c[0]) for c in cols), EVENT_DTYPE)
        for name, col in zip("xytp", zip(*cols)):
            ev[name] = np.concatenate(col)
        return ev[np.argsort(ev["t"], kind="stable")]


def emulate_saccades(
    image,
    *,
    seed=None,
    threshold: float = SaccadeEmulator.threshold,
    threshold_sigma: float = SaccadeEmulator.threshold_sigma,
    refractory_us: int = SaccadeEmulator.refractory_us,
    saccade_us: int = SaccadeEmulator.saccade_us,
    amplitude: float = SaccadeEmulator.amplitude,
    pad: int = SaccadeEmulator.pad,
    eps: float = SaccadeEmulator.eps,
    dt_us: int = SaccadeEmulator.dt_us,
    noise_rate_hz: float = SaccadeEmulator.noise_rate_hz,
) -> np.ndarray:
    """Functional twin of :class:`SaccadeEmulator`: ``emulate_saccades(image, seed=0)`` -> events."""
    emu = SaccadeEmulator(
        threshold=threshold,
        threshold_sigma=threshold_sigma,
        refractory_us=refractory_us,
        saccade_us=saccade_us,
        amplitude=amplitude,
        pad=pad,
        eps=eps,
        dt_us=dt_us,
        noise_rate_hz=noise_rate_hz,
    )
    return emu(image, seed=seed)


#: Named parameter sets of :class:`SaccadeEmulator`. ``"default"`` is the class's defaults (a clean twin:
#: ~4,000 events per digit, no noise). ``"noisy"`` resembles a real sensor more closely and is harder to
#: learn from: contrast threshold 0.5 with a per-pixel mismatch of 0.08 (DVS/ATIS thresholds are
#: typically 0.2-0.6 in log units with a spread of a few hundredths to a tenth), a 5 ms refractory period
#: and 5 Hz of background activity per pixel (the shot/leak noise of real recordings, uniform in time,
#: position and polarity). Its statistics beside the default's and the real N-MNIST fixture's are in
#: ``docs/transfer_study/PREREGISTRATION.md``.
EMULATOR_PRESETS: dict[str, dict] = {
    "default": {},
    "noisy": {"threshold": 0.5, "threshold_sigma": 0.08, "refractory_us": 5000, "noise_rate_hz": 5.0},
}


def emulator_preset(name: str, **overrides) -> SaccadeEmulator:
    """The :class:`SaccadeEmulator` of preset ``name`` (:data:`EMULATOR_PRESETS`), with ``overrides`` applied."""
    if name not in EMULATOR_PRESETS:
        raise ValueError(f"preset: expected one of {sorted(EMULATOR_PRESETS)}, got {name!r}")
    return SaccadeEmulator(**{**EMULATOR_PRESETS[name], **overrides})
