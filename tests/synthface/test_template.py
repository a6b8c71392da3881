"""Tests of the SynthFace template topology."""

import collections

import numpy as np
import pytest

from disent_jax.ops import mesh as mesh_ops
from disent_jax.synthface import template as tpl


@pytest.fixture(scope="module")
def t1k():
  return tpl.template("1k")


def _edge_counts(faces):
  counts = collections.Counter()
  for f in faces:
    for i in range(3):
      a, b = int(f[i]), int(f[(i + 1) % 3])
      counts[(min(a, b), max(a, b))] += 1
  return counts


def _signed_areas(uv, faces):
  a, b, c = uv[faces[:, 0]], uv[faces[:, 1]], uv[faces[:, 2]]
  return 0.5 * ((b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1])
                - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0]))


@pytest.mark.parametrize("name", ["1k", "2.5k"])
def test_vertex_count_near_target(name):
  t = tpl.template(name)
  target = tpl.RESOLUTIONS[name]
  assert abs(t.num_vertices - target) < 0.1 * target


def test_counter_clockwise_well_shaped_faces(t1k):
  faces = t1k.faces
  assert np.all(_signed_areas(t1k.uv.astype(np.float64), faces) > 0)
  uv = t1k.uv[faces[:t1k.num_face_faces]].astype(np.float64)
  min_angle = np.full(len(uv), 180.0)
  for i in range(3):
    e1 = uv[:, (i + 1) % 3] - uv[:, i]
    e2 = uv[:, (i + 2) % 3] - uv[:, i]
    cos = np.sum(e1 * e2, -1) / np.linalg.norm(e1, axis=-1) / np.linalg.norm(
        e2, axis=-1)
    min_angle = np.minimum(min_angle, np.degrees(np.arccos(cos)))
  assert min_angle.min() > 15.0


def test_manifold_with_boundary_and_mouth_cut(t1k):
  face_faces = t1k.faces[:t1k.num_face_faces]
  counts = _edge_counts(face_faces)
  assert max(counts.values()) == 2
  boundary = [e for e, n in counts.items() if n == 1]
  # Boundary edges: the outline plus both lips of the cut.
  cut_vertices = set(np.flatnonzero(t1k.lower_copy).tolist())
  lower_edges = [e for e in boundary if e[0] in cut_vertices
                 or e[1] in cut_vertices]
  assert len(lower_edges) == int(t1k.lower_copy.sum()) + 1
  # The outline is a single closed loop of boundary vertices.
  outline = [e for e in boundary
             if t1k.boundary[e[0]] and t1k.boundary[e[1]]]
  degree = collections.Counter(v for e in outline for v in e)
  assert set(degree.values()) == {2}
  np.testing.assert_allclose(
      np.linalg.norm(t1k.uv[list(degree)], axis=1), 1.0, atol=1e-5)
  # No face uses both copies of a cut vertex.
  uv = t1k.uv
  for f in face_faces:
    pts = {tuple(np.round(uv[i], 6)) for i in f}
    assert len(pts) == 3
  flat = np.concatenate([uv, np.zeros((len(uv), 1))], axis=1)
  mesh_ops.validate_mesh(flat, t1k.faces, source="1k")


def test_lower_copies_coincide_with_upper_lip(t1k):
  lower = np.flatnonzero(t1k.lower_copy)
  for i in lower:
    d = np.linalg.norm(t1k.uv - t1k.uv[i], axis=1)
    d[i] = np.inf
    d[t1k.cavity] = np.inf
    assert d.min() < 1e-7
  assert np.all(np.abs(t1k.uv[lower, 1] - tpl.V_MOUTH) < 1e-6)
  assert np.all(t1k.lip_side[lower] == -1)


def test_mirror_symmetry(t1k):
  m = t1k.mirror
  np.testing.assert_array_equal(m[m], np.arange(t1k.num_vertices))
  np.testing.assert_allclose(t1k.uv[m] * (-1.0, 1.0), t1k.uv, atol=1e-6)
  faces = {tuple(sorted(f)) for f in t1k.faces.tolist()}
  mirrored = {tuple(sorted(m[f])) for f in t1k.faces}
  assert faces == mirrored
  np.testing.assert_array_equal(t1k.regions[m], t1k.regions)


def test_landmarks_in_ibug_order(t1k):
  lm = t1k.landmarks
  uv = t1k.uv[lm]
  np.testing.assert_allclose(uv, tpl.LANDMARKS_UV, atol=1e-6)
  assert len(set(lm.tolist())) == 68
  # Jaw runs image-left to image-right through the chin.
  assert uv[0, 0] < 0 < uv[16, 0]
  assert np.argmin(uv[:17, 1]) == 8
  assert np.all(np.diff(uv[:17, 0]) > 0)
  assert np.all(t1k.boundary[lm[:17]])
  # Left brow/eye/mouth corner on the image left; inner corners inside.
  assert np.all(uv[17:22, 0] < 0) and np.all(uv[22:27, 0] > 0)
  assert np.all(uv[36:42, 0] < 0) and np.all(uv[42:48, 0] > 0)
  assert uv[36, 0] < uv[39, 0] < 0 < uv[42, 0] < uv[45, 0]
  # Nose bridge top to tip, brows above eyes above nose above mouth.
  assert np.all(np.diff(uv[27:31, 1]) < 0)
  assert uv[17:27, 1].min() > uv[36:48, 1].max()
  assert uv[36:48, 1].min() > uv[30, 1] > uv[33, 1] > uv[48:68, 1].max()
  # Mouth corners and inner lips: upper inner 61-63 and lower inner 67-65
  # coincide at rest but are different vertices (lower copies).
  assert uv[48, 0] < uv[60, 0] < uv[64, 0] < uv[54, 0]
  for up, lo in ((61, 67), (62, 66), (63, 65)):
    np.testing.assert_allclose(uv[up], uv[lo], atol=1e-7)
    assert lm[up] != lm[lo] and t1k.lower_copy[lm[lo]]
  # Mirror pairs of iBUG.
  pairs = [(0, 16), (36, 45), (39, 42), (48, 54), (31, 35), (17, 26)]
  for a, b in pairs:
    assert t1k.mirror[lm[a]] == lm[b]


def test_regions(t1k):
  names = tpl.REGION_NAMES
  counts = np.bincount(t1k.regions, minlength=len(names))
  assert np.all(counts > 0), dict(zip(names, counts))
  lm = t1k.landmarks
  region = lambda k: names[t1k.regions[lm[k]]]
  assert region(30) == "nose"
  assert all(region(k) == "eyes" for k in range(36, 48))
  assert all(region(k) == "mouth" for k in range(48, 68))
  assert region(19) == "brows"
  assert np.all(t1k.regions[t1k.cavity] == names.index("mouth_interior"))


def test_build_is_deterministic():
  a = tpl.build_template(600)
  b = tpl.build_template(600)
  np.testing.assert_array_equal(a.uv, b.uv)
  np.testing.assert_array_equal(a.faces, b.faces)
  with pytest.raises(ValueError, match="num_vertices"):
    tpl.build_template(10)
  with pytest.raises(ValueError, match="resolution"):
    tpl.template("3k")
