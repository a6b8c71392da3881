"""Tests for disent_jax.viz.panels (paper figure formats)."""

import matplotlib.image as mpimg
import numpy as np
import pytest

from disent_jax.viz import panels


def _faces(n, seed=0):
  """n distinct smooth synthetic 'images' [n, 24, 24, 3]."""
  rng = np.random.default_rng(seed)
  y, x = np.mgrid[0:24, 0:24] / 23.0
  out = []
  for _ in range(n):
    c = rng.random(3)
    blob = np.exp(-((x - rng.random()) ** 2 + (y - rng.random()) ** 2) / 0.05)
    out.append(np.clip(c * blob[..., None] + 0.1 * (1 - blob[..., None]),
                       0, 1))
  return np.stack(out)


def _check(path, min_hw):
  img = mpimg.imread(path)[..., :3]
  assert img.shape[0] >= min_hw[0] and img.shape[1] >= min_hw[1], img.shape
  assert img.std() > 0.05
  assert (img.min(-1) < 0.8).mean() > 0.05
  return img


def test_comparison_panel(tmp_path):
  x = _faces(3)
  path = panels.comparison_panel(
      str(tmp_path / "cmp.png"),
      {"input": x, "reconstruction": x[::-1], "identity": x * 0.5,
       "expression": 1 - x}, row_labels=["s0", "s1", "s2"], title="demo")
  img = _check(path, (300, 400))
  assert img.shape[1] > img.shape[0]  # 4 columns, 3 rows
  with pytest.raises(ValueError):
    panels.comparison_panel(str(tmp_path / "bad.png"),
                            {"a": x, "b": x[:2]})


def test_transfer_matrix(tmp_path):
  src, tgt = _faces(3, 1), _faces(2, 2)
  res = (src[None] + tgt[:, None]) / 2
  path = panels.transfer_matrix(str(tmp_path / "t.png"), src, tgt, res)
  img = _check(path, (300, 400))
  # The top-left cell is blank (white).
  assert img[: img.shape[0] // 10, : img.shape[1] // 10].min() > 0.95
  with pytest.raises(ValueError):
    panels.transfer_matrix(str(tmp_path / "bad.png"), src, tgt, res[:, :2])


def test_interpolation_strip_and_relighting_rows(tmp_path):
  a, b = _faces(2, 3)
  alphas = np.linspace(0, 1, 5)
  strip = np.stack([(1 - t) * a + t * b for t in alphas])
  path = panels.interpolation_strip(str(tmp_path / "i.png"), strip)
  _check(path, (100, 450))
  two = panels.interpolation_strip(str(tmp_path / "i2.png"),
                                   np.stack([strip, strip[::-1]]),
                                   alphas=alphas, row_labels=["id", "exp"])
  _check(two, (200, 450))
  with pytest.raises(ValueError):
    panels.interpolation_strip(str(tmp_path / "bad.png"), strip,
                               alphas=[0, 1])
  x = _faces(2, 4)
  relit = np.stack([x * s for s in (0.4, 0.7, 1.0)], 1)
  path = panels.relighting_rows(str(tmp_path / "r.png"), x, relit,
                                light_labels=["left", "front", "right"])
  _check(path, (200, 350))
