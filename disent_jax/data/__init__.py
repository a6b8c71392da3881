"""Datasets: SynthFace TFDS builders, on-the-fly sources, pipelines, readers.

  synthface_builders: the four SynthFace TFDS datasets (array_record, no
    TensorFlow) and their build checks.
  build: `python -m disent_jax.data.build`, build or verify a dataset.
  onthefly: the same datasets generated on the fly, identical arrays.
  pipeline: grain pipelines (shuffled, per-process, batched,
    checkpointable).
  readers: CoMA, BU-3DFE and FaceScape from a user-supplied directory.
  photos: real photos framed like SynthFace images, with MediaPipe
    pseudo-labels (needs mediapipe; see docs/real_assets.md).
"""

from disent_jax.data import build
from disent_jax.data import onthefly
from disent_jax.data import photos
from disent_jax.data import pipeline
from disent_jax.data import readers
from disent_jax.data import synthface_builders

__all__ = ["build", "onthefly", "photos", "pipeline", "readers",
           "synthface_builders"]
