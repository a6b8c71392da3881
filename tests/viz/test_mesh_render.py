"""Tests for disent_jax.viz.mesh_render (rasterized meshes, heat maps)."""

import matplotlib.image as mpimg
import matplotlib.pyplot as plt
import numpy as np
import pytest

from disent_jax.viz import mesh_render


def _square(n=10, tilt_deg=0.0):
  """A flat n x n grid in the xy-plane (mm), optionally tilted about y."""
  u, v = np.meshgrid(np.linspace(-50, 50, n), np.linspace(-50, 50, n))
  verts = np.stack([u.ravel(), v.ravel(), np.zeros(n * n)], -1)
  idx = np.arange(n * n).reshape(n, n)
  a, b = idx[:-1, :-1].ravel(), idx[:-1, 1:].ravel()
  c, d = idx[1:, :-1].ravel(), idx[1:, 1:].ravel()
  faces = np.concatenate([np.stack([a, b, d], -1), np.stack([a, d, c], -1)])
  t = np.deg2rad(tilt_deg)
  rot = np.array([[np.cos(t), 0, np.sin(t)], [0, 1, 0],
                  [-np.sin(t), 0, np.cos(t)]])
  return verts @ rot.T, faces.astype(np.int32)


def test_flat_square_coverage_colour_and_head_on_light():
  verts, faces = _square()
  img = mesh_render.render_mesh(verts, faces, size=64, margin=0.0,
                                base_color=(0.8, 0.4, 0.2), ambient=0.25,
                                background=1.0)
  assert img.shape == (64, 64, 3)
  # Fills the image; facing the light: colour * (0.25 + 0.75 * 1).
  np.testing.assert_allclose(img[32, 32], [0.8, 0.4, 0.2], atol=1e-4)
  assert (np.abs(img - [0.8, 0.4, 0.2]).max(-1) < 1e-3).mean() > 0.95
  # Tilted by 60 degrees: n_z = cos 60 = 0.5 -> shade 0.25 + 0.375.
  verts, faces = _square(tilt_deg=60.0)
  img = mesh_render.render_mesh(verts, faces, size=64, margin=0.0,
                                base_color=(1.0, 1.0, 1.0), ambient=0.25,
                                background=0.0)
  np.testing.assert_allclose(img[32, 32], 0.625, atol=1e-3)


def test_heat_map_follows_colour_map_and_orientation():
  verts, faces = _square()
  values = verts[:, 0] - verts[:, 0].min()  # 0 (left) .. 100 (right)
  img = mesh_render.render_mesh(verts, faces, size=64, margin=0.0,
                                values=values, cmap="viridis", vmin=0.0,
                                vmax=100.0)
  # x right in the model is x right in the image: left column ~ cmap(0).
  cmap = plt.get_cmap("viridis")
  np.testing.assert_allclose(img[32, 0], cmap(0.0)[:3], atol=0.03)
  np.testing.assert_allclose(img[32, 63], cmap(1.0)[:3], atol=0.03)
  np.testing.assert_allclose(img[32, 32], cmap(0.5)[:3], atol=0.03)
  # y up in the model is up in the image.
  img = mesh_render.render_mesh(verts, faces, size=64, margin=0.0,
                                values=verts[:, 1], cmap="viridis")
  np.testing.assert_allclose(img[0, 32], cmap(1.0)[:3], atol=0.03)
  with pytest.raises(ValueError):
    mesh_render.render_mesh(verts, faces, values=np.zeros(3))


def test_values_to_colors_matches_matplotlib():
  v = np.array([0.0, 1.0, 2.0, 4.0])
  c = mesh_render.values_to_colors(v, cmap="jet", vmin=0.0, vmax=2.0)
  ref = plt.get_cmap("jet")(np.array([0.0, 0.5, 1.0, 1.0]))[:, :3]
  np.testing.assert_allclose(c, ref, atol=1e-6)
  assert np.isfinite(mesh_render.values_to_colors(np.ones(3))).all()


def test_error_map_png_has_colour_bar_and_content(tmp_path):
  verts, faces = _square()
  bump = verts.copy()
  bump[:, 2] = 20 * np.exp(-(verts[:, 0] ** 2 + verts[:, 1] ** 2) / 800)
  errs = np.stack([np.abs(verts[:, 0]) / 10, np.abs(verts[:, 1]) / 20])
  path = mesh_render.save_error_maps(
      str(tmp_path / "err.png"), np.stack([bump, bump]), faces, errs,
      titles=["a", "b"], title="per-vertex error", size=64)
  img = mpimg.imread(path)[..., :3]
  assert img.shape[0] >= 200 and img.shape[1] >= 400, img.shape
  assert img.std() > 0.1
  # The colour bar: a column on the right with a blue-to-red gradient.
  right = img[:, int(img.shape[1] * 0.8):]
  assert (right[..., 2] - right[..., 0] > 0.5).any()
  assert (right[..., 0] - right[..., 2] > 0.5).any()
  p2 = mesh_render.save_mesh_image(str(tmp_path / "m.png"), bump, faces,
                                   size=64, rotation=np.array([0, 0.4, 0]))
  m = mpimg.imread(p2)[..., :3]
  assert m.shape[:2] == (64, 64) and (m.min(-1) < 0.9).mean() > 0.3
