"""Data sets for the sj-plugins: the embedded default, the saccade event emulator, frames, pairing, splits.

Every data set is a torch ``Dataset`` with ``.targets`` (int64 numpy array, readable without loading
samples) and ``.classes`` (list of str). Names are imported on first use (module ``__getattr__``), so
``import sj_common.data`` is cheap and never imports tonic (GPL-3.0, the optional ``[events]`` extra):

* embedded (no root, no download): :class:`MNIST5k`, :class:`Digits8x8`, :class:`MNIST5kEvents`
* event arrays: :data:`EVENT_DTYPE`, :func:`check_events` (what every reader checks)
* emulator: :class:`SaccadeEmulator`, :func:`emulate_saccades`, :func:`emulator_preset`, :data:`EMULATOR_PRESETS`
* frames: :func:`events_to_frames`, :class:`ToFrames`, :class:`FrameCache`, :class:`CachedFrames`
* pairing: :class:`PairedStaticEvent`, :func:`encode_static`
* sampling: :class:`ClassBalancedSampler` (seeded, sharded, resumable; yields :class:`DrawIndex`)
* splits: :func:`stratified_split`, :func:`stratified_subset`, :func:`train_test_split`, :class:`Subset` (keeps ``.targets``),
  :class:`FewShotEpisodes` (n-way k-shot episodes, N-Omniglot's few-shot mode)
* local roots: :func:`event_dataset`, :data:`EVENT_DATASETS` (``sj_common.data.events``, needs tonic),
  :func:`static_dataset`, :data:`STATIC_DATASETS` (``sj_common.data.static``)
"""

from __future__ import annotations

from ..lazy import lazy_exports

_LAZY = {
    "MNIST5k": "embedded",
    "Digits8x8": "embedded",
    "MNIST5kEvents": "embedded",
    "load_mnist5k": "embedded",
    "load_digits8x8": "embedded",
    "SaccadeEmulator": "emulator",
    "emulate_saccades": "emulator",
    "saccade_path": "emulator",
    "EMULATOR_PRESETS": "emulator",
    "emulator_preset": "emulator",
    "EVENT_DTYPE": "eventarray",
    "check_events": "eventarray",
    "events_to_frames": "frames",
    "ToFrames": "frames",
    "FrameCache": "frames",
    "CachedFrames": "frames",
    "PairedStaticEvent": "paired",
    "encode_static": "paired",
    "ClassBalancedSampler": "sampling",
    "DrawIndex": "sampling",
    "stratified_split": "splits",
    "stratified_subset": "splits",
    "train_test_split": "splits",
    "Subset": "subset",
    "FewShotEpisodes": "episodes",
    "event_dataset": "events",
    "EVENT_DATASETS": "events",
    "static_dataset": "static",
    "STATIC_DATASETS": "static",
}

__all__ = sorted(_LAZY)


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
