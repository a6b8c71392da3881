"""benchmarks/raster.py: its embree (trimesh) peer agrees with `rasterize`."""

import functools
import pathlib
import sys

import jax
import numpy as np
import pytest

from disent_jax.ops import raster

pytest.importorskip("embreex")

# `benchmarks` is a top-level folder of the repository, not an installed
# package.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from benchmarks import raster as raster_bench  # pylint: disable=g-import-not-at-top,wrong-import-position

SIZE = 32


def test_embree_caster_matches_rasterize():
  # A closed sphere: every ray passes two layers, so the first hit must be
  # the nearer (smaller z) one, as in `rasterize`.
  vertices, faces = raster_bench.sphere_mesh(400, SIZE)
  # Shifted off the pixel grid so that no pixel centre lies on an edge.
  vertices = vertices + np.array([0.137, 0.291, 0.0], np.float32)
  fragments = jax.jit(functools.partial(
      raster.rasterize, height=SIZE, width=SIZE))(vertices, faces)
  caster = raster_bench.EmbreeCaster(vertices, faces, height=SIZE,
                                     width=SIZE)
  hits = caster()
  assert caster.build_s > 0
  assert hits.triangle_id.shape == hits.depth.shape == (SIZE, SIZE)
  agree = raster_bench.agreement(fragments, hits)
  assert agree["coverage_iou"] == 1.0
  assert agree["id_match"] == 1.0
  assert agree["depth_abs_max"] < 1e-3
  mask = np.asarray(fragments.mask)
  assert 0.3 < mask.mean() < 1.0
  assert np.all(np.isinf(hits.depth[~hits.mask]))
  assert np.all(hits.triangle_id[~hits.mask] == -1)
  # The visible layer is the front (z < 0) half of the sphere.
  assert np.all(hits.depth[hits.mask] <= 1e-3)
