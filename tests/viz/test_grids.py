"""Tests for disent_jax.viz.grids."""

import matplotlib.image as mpimg
import numpy as np
import pytest

from disent_jax.viz import grids


def _check_png(path, min_size=(60, 60)):
  img = mpimg.imread(path)
  assert img.shape[0] >= min_size[0] and img.shape[1] >= min_size[1]
  rgb = img[..., :3]
  assert rgb.std() > 0.05  # not blank
  assert (rgb.min(-1) < 0.9).mean() > 0.02  # some non-white content
  return img


def test_tile_places_cells_exactly():
  a = np.zeros((2, 3, 4, 5, 3), np.float32)
  a[1, 2] = 1.0
  out = grids.tile(a, pad=1, pad_value=0.5)
  assert out.shape == (2 * 4 + 1, 3 * 5 + 2, 3)
  np.testing.assert_array_equal(out[5:9, 12:17], 1.0)
  np.testing.assert_array_equal(out[4], 0.5)
  # uint8 and greyscale inputs
  g = grids.tile([[np.full((2, 2), 255, np.uint8)]], pad=0)
  np.testing.assert_array_equal(g, 1.0)
  with pytest.raises(ValueError):
    grids.tile([[np.zeros((2, 2, 3)), np.zeros((3, 2, 3))]])


def test_image_grid_writes_labelled_png(tmp_path):
  rng = np.random.default_rng(0)
  images = rng.random((2, 3, 16, 16, 3))
  path = grids.image_grid(str(tmp_path / "sub" / "grid.png"), images,
                          row_labels=["a", "b"], col_labels=["x", "y", "z"],
                          title="grid")
  img = _check_png(path, (150, 300))
  # Blank cells and ragged rows are allowed.
  grids.image_grid(str(tmp_path / "g2.png"), [[images[0, 0], None],
                                              [images[1, 1]]])
  _check_png(str(tmp_path / "g2.png"))
  with pytest.raises(ValueError):
    grids.image_grid(str(tmp_path / "bad.png"), images, row_labels=["a"])
  assert img.shape[1] > img.shape[0]


def test_save_image_roundtrip(tmp_path):
  x = np.linspace(0, 1, 32 * 32 * 3).reshape(32, 32, 3)
  path = grids.save_image(str(tmp_path / "x.png"), x)
  back = mpimg.imread(path)[..., :3]
  np.testing.assert_allclose(back, x, atol=1 / 255 + 1e-6)
