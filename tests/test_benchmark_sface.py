"""benchmarks/sface.py: the OpenCV peer is checked against ours before timing."""

import pathlib
import sys

import jax.numpy as jnp
import numpy as np
import pytest

from disent_jax.nets import sface

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from benchmarks import sface as bench  # pylint: disable=g-import-not-at-top,wrong-import-position

pytest.importorskip("onnx", reason="SFace needs 'onnx' (the [real] extra)")
pytest.importorskip("cv2", reason="the peer needs opencv-python-headless<5")
try:
  sface.find_sface_file()
except FileNotFoundError as e:
  pytest.skip(str(e), allow_module_level=True)


def test_agreement_check_passes_ours_and_rejects_wrong_embeddings():
  net = sface.load_sface()
  recognizer = bench._opencv(net)  # pylint: disable=protected-access
  faces = bench._faces(2)  # pylint: disable=protected-access
  ours = np.asarray(sface.embed(net, jnp.asarray(faces, jnp.float32) / 255))
  bench._check_agreement(ours, recognizer, faces)  # pylint: disable=protected-access
  with pytest.raises(AssertionError, match="disagrees"):
    bench._check_agreement(ours[::-1], recognizer, faces)  # pylint: disable=protected-access
