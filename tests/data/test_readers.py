"""Real-dataset readers on tiny fixtures written in each on-disk format."""

import pickle

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import trimesh

from disent_jax.data import pipeline
from disent_jax.data.readers import bu3dfe
from disent_jax.data.readers import coma
from disent_jax.data.readers import common
from disent_jax.data.readers import facescape
from disent_jax.data.readers import formats
from disent_jax.metrics import alignment
from disent_jax.ops import hierarchy
from disent_jax.ops import mesh as mesh_ops


def _sphere(subdivisions=1):
  m = trimesh.creation.icosphere(subdivisions=subdivisions)
  return np.asarray(m.vertices, np.float64), np.asarray(m.faces, np.int64)


def _rotation(seed):
  q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
  return q * np.sign(np.linalg.det(q))


def _write_ply(path, vertices, faces):
  path.parent.mkdir(parents=True, exist_ok=True)
  mesh = trimesh.Trimesh(vertices, faces, process=False)
  path.write_bytes(trimesh.exchange.ply.export_ply(mesh))


# ---------------------------------------------------------------------------
# Parsers.
# ---------------------------------------------------------------------------


def test_obj_keeps_vertex_order_with_texture_coordinates(tmp_path):
  # Two triangles sharing an edge, with per-corner texture coordinates that
  # differ along the shared edge (a seam) and one quad.
  text = """# comment
mtllib x.mtl
v 0 0 0
v 1 0 0
v 1 1 0
v 0 1 0
v 0 0 1
vt 0 0
vt 1 0
vt 1 1
vt 0.5 0.5
f 1/1 2/2 3/3
f 1/4 3/2 4/1
f 1//1 2//1 -1//1
f 2/1/1 3/2/1 4/3/1 5/4/1
"""
  path = tmp_path / "m.obj"
  path.write_text(text)
  v, f = formats.read_obj(path)
  np.testing.assert_array_equal(v, [[0, 0, 0], [1, 0, 0], [1, 1, 0],
                                    [0, 1, 0], [0, 0, 1]])
  np.testing.assert_array_equal(
      f, [[0, 1, 2], [0, 2, 3], [0, 1, 4], [1, 2, 3], [1, 3, 4]])


def test_obj_written_by_trimesh_round_trips(tmp_path):
  v, f = _sphere(2)
  path = tmp_path / "s.obj"
  path.write_text(trimesh.exchange.obj.export_obj(
      trimesh.Trimesh(v, f, process=False), digits=10))
  rv, rf = formats.read_obj(path)
  np.testing.assert_allclose(rv, v, atol=1e-9)
  np.testing.assert_array_equal(rf, f)


@pytest.mark.parametrize("corner", ["{v}", "{v}/{v}", "{v}//2", "{v}/1/2"])
def test_obj_triangle_corner_formats(tmp_path, corner):
  v, f = _sphere(1)
  lines = [f"v {x:.9f} {y:.9f} {z:.9f}" for x, y, z in v]
  lines += ["vt 0 0", "vt 1 1", "vn 0 0 1", "vn 0 1 0", "usemtl skin"]
  lines += ["f " + " ".join(corner.format(v=i + 1) for i in tri) for tri in f]
  path = tmp_path / "c.obj"
  path.write_text("\n".join(lines) + "\n")
  rv, rf = formats.read_obj(path)
  np.testing.assert_allclose(rv, v, atol=1e-8)
  np.testing.assert_array_equal(rf, f)


@pytest.mark.parametrize("text, problem", [
    ("v 0 0 0\nv 1 0 0\nv 0 1 0\nv 1 1 0\nf 1 2 3 4\nf 1 2\n",
     "line 6: a face needs at least 3"),
    ("v 0 0 0\nv 1 0\nf 1 2 3\n", "needs 3 coordinates"),
    ("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 x\n", "bad face"),
    ("v 0 0 0\nv 1 0 0\nv 0 1 0\n", "no 'f' records"),
])
def test_obj_malformed_names_the_file(tmp_path, text, problem):
  path = tmp_path / "bad.obj"
  path.write_text(text)
  with pytest.raises(mesh_ops.MeshError, match=problem) as e:
    formats.read_obj(path)
  assert str(path) in str(e.value)


def _vrml(vertices, faces, *, texture_first=False, commas=True):
  sep = "," if commas else ""
  points = "\n".join(f"            {x:.6f} {y:.6f} {z:.6f}{sep}"
                     for x, y, z in vertices)
  index = "\n".join(f"          {a}, {b}, {c}, -1," for a, b, c in faces)
  tex = """        texCoord TextureCoordinate {
          point [
            0.1 0.2, 0.3 0.4, 0.5 0.6
          ]
        }
"""
  coord = f"""        coord Coordinate {{
          point [
{points}
          ]
        }}
"""
  return f"""#VRML V2.0 utf8

# produced by a scanner; comments may mention coordIndex [ 1 2 3 ]
Transform {{
  children [
    Shape {{
      appearance Appearance {{
        texture ImageTexture {{ url "scan_F3D.bmp" }}
      }}
      geometry IndexedFaceSet {{
        creaseAngle 1.0
        ccw TRUE
{tex + coord if texture_first else coord + tex}
        coordIndex [
{index}
        ]
        texCoordIndex [
          0, 1, 2, -1,
        ]
      }}
    }}
  ]
}}
"""


@pytest.mark.parametrize("texture_first, commas", [(False, True),
                                                   (True, False)])
def test_vrml_parses_coordinates_and_faces(tmp_path, texture_first, commas):
  v, f = _sphere(1)
  v = np.round(v * 80.0 + [1.5, -2.0, 30.0], 6)
  path = tmp_path / "s.wrl"
  text = _vrml(v, f, texture_first=texture_first, commas=commas)
  # The second variant also starts with a UTF-8 byte-order mark.
  prefix = b"\xef\xbb\xbf" if texture_first else b""
  path.write_bytes(prefix + text.encode())
  rv, rf = formats.read_vrml(path)
  np.testing.assert_allclose(rv, v, atol=1e-9)
  np.testing.assert_array_equal(rf, f)


def test_vrml_quad_is_split_into_a_fan_and_last_minus_one_optional(tmp_path):
  text = """#VRML V2.0 utf8
Shape { geometry IndexedFaceSet {
  coord Coordinate { point [ 0 0 0, 1 0 0, 1 1 0, 0 1 0, 2 2 2 ] }
  coordIndex [ 0 1 2 3 -1 1 4 2 ] } }
"""
  path = tmp_path / "q.wrl"
  path.write_text(text)
  rv, rf = formats.read_vrml(path)
  assert rv.shape == (5, 3)
  np.testing.assert_array_equal(rf, [[0, 1, 2], [0, 2, 3], [1, 4, 2]])


@pytest.mark.parametrize("cut, problem", [
    (lambda s: s[:len(s) // 2], "not closed"),
    (lambda s: s.replace("#VRML V2.0 utf8", "#X3D"), "header"),
    (lambda s: s.replace("-1,", "-1, oops,", 1), "non-numeric token 'oops'"),
    (lambda s: s.replace("coordIndex [", "coordIdx ["), "no 'coordIndex"),
])
def test_vrml_malformed_names_the_file(tmp_path, cut, problem):
  v, f = _sphere(1)
  path = tmp_path / "bad.wrl"
  path.write_text(cut(_vrml(v, f)))
  with pytest.raises(mesh_ops.MeshError, match=problem) as e:
    formats.read_vrml(path)
  assert str(path) in str(e.value)


def test_missing_file_raises_file_not_found(tmp_path):
  for name in ("a.ply", "a.obj", "a.wrl"):
    with pytest.raises(FileNotFoundError, match=name):
      formats.read_mesh(tmp_path / name)


# ---------------------------------------------------------------------------
# Shared helpers.
# ---------------------------------------------------------------------------


def test_rigid_alignment_recovers_a_known_motion_and_matches_procrustes():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(30, 3))
  r, t = _rotation(1), np.array([3.0, -1.0, 2.0])
  y = x @ r.T + t
  rot, trans = common.rigid_alignment(x, y)
  np.testing.assert_allclose(rot, r, atol=1e-10)
  np.testing.assert_allclose(trans, t, atol=1e-10)
  # Noisy data: the same answer as the (JAX) Umeyama solver, det = +1.
  noisy = y + rng.normal(scale=0.3, size=y.shape)
  rot, trans = common.rigid_alignment(x, noisy)
  ref = alignment.procrustes(jnp.asarray(x), jnp.asarray(noisy))
  np.testing.assert_allclose(rot, ref.rotation, atol=1e-5)
  np.testing.assert_allclose(trans, ref.translation, atol=1e-4)
  assert np.isclose(np.linalg.det(rot), 1.0)
  # A subset fit uses only those rows.
  moved = y.copy()
  moved[10:] += 5.0
  rot, trans = common.rigid_alignment(x, moved, vertex_ids=np.arange(10))
  np.testing.assert_allclose(rot, r, atol=1e-10)


def test_subject_split_counts_and_determinism():
  names = [str(i) for i in range(1, 21)]
  train, test = common.subject_split(names, test_fraction=0.3, seed=5)
  assert len(test) == 6 and len(train) == 14
  assert sorted(train + test, key=int) == names
  expected = {names[i] for i in np.random.default_rng(5).permutation(20)[:6]}
  assert set(test) == expected
  assert common.subject_split(names, test_fraction=0.3, seed=5)[1] == test
  assert common.subject_split(names, test_fraction=0.3, seed=6)[1] != test


# ---------------------------------------------------------------------------
# CoMA.
# ---------------------------------------------------------------------------

_COMA_SUBJECTS = ("FaceTalk_B", "FaceTalk_A")  # Written out of order.
_COMA_EXPRESSIONS = ("mouth_open", "bareteeth", "eyebrow")
_COMA_LENGTHS = {"bareteeth": 23, "eyebrow": 17, "mouth_open": 21}


def _coma_vertices(base, subject, expression, frame):
  s = _COMA_SUBJECTS.index(subject)
  e = _COMA_EXPRESSIONS.index(expression)
  bulge = np.sin(base * (e + 1.0)) * 0.004 * (frame - 1)
  return 0.1 * base + 0.01 * s + bulge


def _write_coma(root):
  base, faces = _sphere(1)
  for s in _COMA_SUBJECTS:
    for x in _COMA_EXPRESSIONS:
      for frame in range(1, _COMA_LENGTHS[x] + 1):
        _write_ply(root / s / x / f"{x}.{frame:06d}.ply",
                   _coma_vertices(base, s, x, frame), faces)
  (root / _COMA_SUBJECTS[0] / "eyebrow" / ".hidden.ply").write_text("junk")
  (root / _COMA_SUBJECTS[0] / "eyebrow" / "notes.txt").write_text("junk")
  return base, faces


def _coma_order():
  return sorted((s, x, f) for s in _COMA_SUBJECTS for x in _COMA_EXPRESSIONS
                for f in range(1, _COMA_LENGTHS[x] + 1))


def _key(source, item):
  return (source.subject_names[int(item["subject"])],
          source.expression_names[int(item["expression"])],
          int(item["frame"]))


def test_coma_interpolation_split_ids_scale_and_neutral(tmp_path):
  base, faces = _write_coma(tmp_path)
  order = _coma_order()  # 2 * (23 + 17 + 21) = 122 meshes.
  expected_test = set(order[0:10] + order[100:110])
  test = coma.load_coma(tmp_path, split="test", num_vertices=42)
  train = coma.load_coma(tmp_path, split="train", num_vertices=42)
  assert len(test) == 20 and len(train) == 102
  assert test.subject_names == ("FaceTalk_A", "FaceTalk_B")
  assert test.expression_names == ("bareteeth", "eyebrow", "mouth_open")
  np.testing.assert_array_equal(test.faces, faces)
  test_keys = [_key(test, test[i]) for i in range(len(test))]
  assert test_keys == sorted(expected_test)
  train_keys = {(test.subject_names[r.subject],
                 test.expression_names[r.expression], r.labels["frame"])
                for r in train.records}
  assert train_keys == set(order) - expected_test
  for i in (0, 7, 15):
    item = test[i]
    s, x, frame = _key(test, item)
    assert item["vertices"].dtype == np.float32
    want = np.float32(_coma_vertices(base, s, x, frame)).astype(np.float64)
    np.testing.assert_allclose(item["vertices"], want * 1000.0, rtol=1e-6)
    first = np.float32(_coma_vertices(base, s, x, 1)).astype(np.float64)
    np.testing.assert_allclose(item["neutral"], first * 1000.0, rtol=1e-6)
    assert bool(item["has_neutral"])
    assert int(item["sequence"]) == sorted(
        {(a, b) for a, b, _ in order}).index((s, x))


def test_coma_extrapolation_and_subject_mean_neutral(tmp_path):
  base, _ = _write_coma(tmp_path)
  test = coma.load_coma(tmp_path, split="test", protocol="extrapolation",
                        test_expression="eyebrow", neutral="subject_mean",
                        num_vertices=42)
  train = coma.load_coma(tmp_path, split="train", protocol="extrapolation",
                         test_expression="eyebrow", num_vertices=None)
  assert len(test) == 2 * 17 and len(train) == 2 * (23 + 21)
  assert {test.expression_names[r.expression] for r in test.records} == {
      "eyebrow"}
  assert "eyebrow" not in {train.expression_names[r.expression]
                           for r in train.records}
  item = test[3]
  s = test.subject_names[int(item["subject"])]
  firsts = [np.float32(_coma_vertices(base, s, x, 1)).astype(np.float64)
            for x in _COMA_EXPRESSIONS]
  np.testing.assert_allclose(item["neutral"], np.mean(firsts, 0) * 1000.0,
                             rtol=1e-6)
  plain = coma.load_coma(tmp_path, neutral="none", num_vertices=42)
  assert not bool(plain[0]["has_neutral"])
  np.testing.assert_array_equal(plain[0]["neutral"], 0.0)
  with pytest.raises(ValueError, match="not among"):
    coma.load_coma(tmp_path, protocol="extrapolation",
                   test_expression="smile", num_vertices=42)


def test_coma_identity_protocol_holds_out_whole_subjects(tmp_path):
  _write_coma(tmp_path)
  order = _coma_order()
  # Explicit names (a sequence, or one comma-separated string).
  for names in (["FaceTalk_B"], "FaceTalk_B"):
    test = coma.load_coma(tmp_path, split="test", protocol="identity",
                          test_subjects=names, num_vertices=42)
    train = coma.load_coma(tmp_path, split="train", protocol="identity",
                           test_subjects=names, num_vertices=0)
    assert [_key(test, test[i]) for i in range(len(test))] == [
        k for k in order if k[0] == "FaceTalk_B"]
    assert {train.subject_names[r.subject] for r in train.records} == {
        "FaceTalk_A"}
    assert len(test) + len(train) == len(order)
    # Subject indices are shared by the splits; neutrals stay per sequence.
    assert test.subject_names == train.subject_names
    item = test[5]
    s, x, _ = _key(test, item)
    base, _ = _sphere(1)
    first = np.float32(_coma_vertices(base, s, x, 1)).astype(np.float64)
    np.testing.assert_allclose(item["neutral"], first * 1000.0, rtol=1e-6)
  # By fraction: a seeded choice of the sorted names, deterministic.
  subjects = sorted(_COMA_SUBJECTS)
  for seed in range(4):
    test = coma.load_coma(tmp_path, split="test", protocol="identity",
                          test_fraction=0.5, seed=seed, num_vertices=42)
    held = {test.subject_names[r.subject] for r in test.records}
    want = {subjects[int(np.random.default_rng(seed).permutation(2)[0])]}
    assert held == want
    again = coma.load_coma(tmp_path, split="test", protocol="identity",
                           test_fraction=0.5, seed=seed, num_vertices=42)
    assert [r.path for r in again.records] == [r.path for r in test.records]
  # The other protocols are unchanged by the new arguments.
  plain = coma.load_coma(tmp_path, split="test", num_vertices=42,
                         test_subjects="FaceTalk_B")
  assert len(plain) == 20
  with pytest.raises(ValueError, match="not among the CoMA subjects"):
    coma.load_coma(tmp_path, protocol="identity", test_subjects="Nobody",
                   num_vertices=42)
  with pytest.raises(ValueError, match="holds out 0 of 2 subjects"):
    coma.load_coma(tmp_path, protocol="identity", test_fraction=0.1,
                   num_vertices=42)
  with pytest.raises(ValueError, match="holds out 2 of 2 subjects"):
    coma.load_coma(tmp_path, protocol="identity",
                   test_subjects=list(_COMA_SUBJECTS), num_vertices=42)
  with pytest.raises(ValueError, match="protocol must be one of"):
    coma.load_coma(tmp_path, protocol="subjects", num_vertices=42)


def test_identity_test_subjects_on_twelve_subjects():
  names = [f"FaceTalk_{i:02d}" for i in range(12)]
  test = coma.identity_test_subjects(names)  # Default fraction 0.25.
  assert len(test) == 3 and test == sorted(test)
  _, want = common.subject_split(sorted(names), test_fraction=0.25, seed=0)
  assert test == sorted(want)
  assert coma.identity_test_subjects(names, seed=1) != test
  assert coma.identity_test_subjects(
      names, test_subjects=" FaceTalk_03, FaceTalk_01 ") == [
          "FaceTalk_01", "FaceTalk_03"]


def test_typed_config_defaults_mean_not_given(tmp_path):
  _write_coma(tmp_path / "coma")
  a = coma.load_coma(tmp_path / "coma", num_vertices=0)
  assert a.num_vertices == 42
  _, faces, _ = _write_bu3dfe(tmp_path / "bu")
  b = bu3dfe.load_bu3dfe(tmp_path / "bu", split="test", num_vertices=0,
                         alignment_vertex_ids=(), test_subjects=(),
                         num_test_subjects=3)
  assert b.num_vertices == 42 and b.alignment_vertex_ids is None
  assert {b.subject_names[r.subject] for r in b.records} == {
      "F0001", "F0002", "F0003"}
  named = bu3dfe.load_bu3dfe(tmp_path / "bu", split="test",
                             test_subjects="M0002,F0004")
  assert {named.subject_names[r.subject] for r in named.records} == {
      "F0004", "M0002"}
  counted = bu3dfe.load_bu3dfe(tmp_path / "bu", split="test",
                               test_subjects=2)
  assert len({r.subject for r in counted.records}) == 2
  _write_facescape(tmp_path / "fs")
  f = facescape.load_facescape(tmp_path / "fs", num_vertices=0, template="",
                               cache_dir="")
  assert f.num_vertices == 642
  with pytest.raises(ValueError, match="positive count or 0"):
    coma.load_coma(tmp_path / "coma", num_vertices=-1)


def test_coma_source_feeds_batched_iterator(tmp_path):
  _write_coma(tmp_path)
  source = coma.load_coma(tmp_path, split="test", num_vertices=42)
  it = pipeline.batched_iterator(source, batch_size=4, seed=0, num_epochs=1)
  batches = list(it)
  assert len(batches) == 5
  b = batches[0]
  assert b["vertices"].shape == (4, 42, 3) and b["neutral"].shape == (4, 42,
                                                                       3)
  assert b["subject"].dtype == np.int32
  for row in range(4):
    np.testing.assert_array_equal(b["vertices"][row],
                                  source[int(b["index"][row])]["vertices"])
  seen = np.concatenate([x["index"] for x in batches])
  assert sorted(seen.tolist()) == list(range(20))
  clone = pickle.loads(pickle.dumps(source))
  np.testing.assert_array_equal(clone[3]["neutral"], source[3]["neutral"])
  arrays = source.to_array_source()
  assert len(arrays) == 20
  np.testing.assert_array_equal(arrays[5]["vertices"], source[5]["vertices"])


def test_coma_errors_name_the_problem(tmp_path):
  with pytest.raises(FileNotFoundError, match="CoMA.*<expression>.<frame"):
    coma.load_coma(tmp_path / "nope")
  _write_coma(tmp_path)
  order = _coma_order()
  # A truncated file (a test mesh: position 100 of the order).
  s, x, frame = order[100]
  bad = tmp_path / s / x / f"{x}.{frame:06d}.ply"
  bad.write_bytes(bad.read_bytes()[:300])
  # A mesh with the wrong vertex count (position 101).
  s2, x2, frame2 = order[101]
  wrong = tmp_path / s2 / x2 / f"{x2}.{frame2:06d}.ply"
  _write_ply(wrong, *_sphere(2))
  source = coma.load_coma(tmp_path, split="test", num_vertices=42)
  keys = [(source.subject_names[r.subject],
           source.expression_names[r.expression], r.labels["frame"])
          for r in source.records]
  with pytest.raises(mesh_ops.MeshError, match="not a readable PLY") as e:
    _ = source[keys.index(order[100])]
  assert str(bad) in str(e.value)
  with pytest.raises(mesh_ops.MeshError,
                     match="expected 42 vertices, got 162") as e:
    _ = source[keys.index(order[101])]
  assert str(wrong) in str(e.value)
  # The default expects CoMA's 5023 vertices: the first file fails.
  with pytest.raises(mesh_ops.MeshError, match="expected 5023 vertices"):
    coma.load_coma(tmp_path)
  (tmp_path / s / x / "bareteeth_1.ply").write_text("x")
  with pytest.raises(ValueError, match="unexpected CoMA file name"):
    coma.load_coma(tmp_path)


# ---------------------------------------------------------------------------
# BU-3DFE.
# ---------------------------------------------------------------------------

_BU_SUBJECTS = ([f"F{i:04d}" for i in range(1, 8)]
                + [f"M{i:04d}" for i in range(1, 6)])
_BU_SCANS = (("NE", 0), ("AN", 1), ("AN", 4), ("HA", 2), ("SU", 3))


def _bu_shapes(base, subject_index, code, level):
  """(neutral shape, expression scan) before the per-scan rigid motion."""
  identity = 80.0 * base * (1.0 + 0.03 * subject_index)
  if code in ("NE", "SU"):  # SU03 is a pure rigid copy of the neutral.
    return identity
  bump = np.zeros_like(base)
  bump[:, 2] = 4.0 * level * np.maximum(base[:, 1], 0.0)
  return identity + bump


def _write_bu3dfe(root):
  base, faces = _sphere(1)
  raw = {}
  for si, s in enumerate(_BU_SUBJECTS):
    for k, (code, level) in enumerate(_BU_SCANS):
      seed = 100 * si + k
      r = _rotation(seed)
      t = np.random.default_rng(seed).normal(scale=10.0, size=3)
      v = np.round(_bu_shapes(base, si, code, level) @ r.T + t, 6)
      name = f"{s}_{code}{level:02d}WH_F3D.wrl"
      (root / s).mkdir(parents=True, exist_ok=True)
      (root / s / name).write_text(_vrml(v, faces))
      raw[(s, code, level)] = v
    (root / s / f"{s}_NE00WH_F3D.bnd").write_text("landmarks")
    (root / s / f"{s}_AN01WH_RAW.wrl").write_text("ignored")
  return base, faces, raw


@jax.jit
def _procrustes_onto(x, y):
  return alignment.apply_similarity(x, alignment.procrustes(x, y))


def _kabsch_onto(x, y):
  return np.asarray(_procrustes_onto(jnp.asarray(x), jnp.asarray(y)),
                    np.float64)


def test_bu3dfe_split_alignment_and_neutral(tmp_path):
  _, faces, raw = _write_bu3dfe(tmp_path)
  test = bu3dfe.load_bu3dfe(tmp_path, split="test")
  train = bu3dfe.load_bu3dfe(tmp_path, split="train")
  first10 = sorted(_BU_SUBJECTS)[:10]
  assert {test.subject_names[r.subject] for r in test.records} == set(first10)
  assert {train.subject_names[r.subject] for r in train.records} == {
      "M0004", "M0005"}
  assert len(test) == 10 * 5 and len(train) == 2 * 5
  np.testing.assert_array_equal(test.faces, faces)
  assert test.expression_names[0] == "NE"
  # The reference is the mean of the training neutrals, as read.
  reference = np.mean([raw[(s, "NE", 0)] for s in ("M0004", "M0005")], 0)
  np.testing.assert_allclose(test.reference, reference, atol=1e-9)
  for i, record in enumerate(test.records):
    s = test.subject_names[record.subject]
    code = bu3dfe.EXPRESSIONS[record.expression]
    level = record.labels["intensity"]
    item = test[i]
    neutral = _kabsch_onto(raw[(s, "NE", 0)], reference)
    np.testing.assert_allclose(item["neutral"], neutral, atol=2e-3)
    expected = _kabsch_onto(raw[(s, code, level)], neutral)
    np.testing.assert_allclose(item["vertices"], expected, atol=2e-3)
    assert int(item["intensity"]) == level
    if code in ("NE", "SU"):  # A rigid copy lands exactly on the neutral.
      np.testing.assert_allclose(item["vertices"], item["neutral"],
                                 atol=1e-3)
  # Explicit names, e.g. the public code's list, and no alignment.
  named = bu3dfe.load_bu3dfe(tmp_path, split="test", align=False,
                             test_subjects=["F0007", "M0005"])
  assert len(named) == 10
  item = named[0]
  np.testing.assert_allclose(item["vertices"], raw[("F0007", "NE", 0)],
                             atol=1e-5)
  assert named.subject_names[int(item["subject"])] == "F0007"


def test_bu3dfe_alignment_subset_ignores_other_vertices(tmp_path):
  _, _, raw = _write_bu3dfe(tmp_path)
  ids = np.arange(0, 42, 3)
  source = bu3dfe.load_bu3dfe(tmp_path, split="train",
                              alignment_vertex_ids=ids)
  i = next(k for k, r in enumerate(source.records)
           if bu3dfe.EXPRESSIONS[r.expression] == "AN"
           and r.labels["intensity"] == 4)
  s = source.subject_names[source.records[i].subject]
  item = source[i]
  x, y = raw[(s, "AN", 4)], np.asarray(item["neutral"], np.float64)
  t = alignment.procrustes(jnp.asarray(x[ids]), jnp.asarray(y[ids]))
  want = np.asarray(alignment.apply_similarity(jnp.asarray(x), t))
  np.testing.assert_allclose(item["vertices"], want, atol=2e-3)


def test_bu3dfe_errors_name_the_problem(tmp_path):
  with pytest.raises(FileNotFoundError, match="BU-3DFE.*_F3D.wrl"):
    bu3dfe.load_bu3dfe(tmp_path / "nope")
  base, faces, _ = _write_bu3dfe(tmp_path)
  # An unregistered scan: one vertex more than the others.
  extra = np.concatenate([80.0 * base, [[0.0, 0.0, 200.0]]])
  unregistered = tmp_path / "F0002" / "F0002_HA02WH_F3D.wrl"
  unregistered.write_text(_vrml(extra, faces))
  # A truncated scan.
  truncated = tmp_path / "F0003" / "F0003_AN04WH_F3D.wrl"
  truncated.write_text(truncated.read_text()[:400])
  source = bu3dfe.load_bu3dfe(tmp_path, split="test", align=False)
  paths = [r.path for r in source.records]
  with pytest.raises(mesh_ops.MeshError,
                     match="expected 42 vertices, got 43.*registered") as e:
    _ = source[paths.index(str(unregistered))]
  assert str(unregistered) in str(e.value)
  with pytest.raises(mesh_ops.MeshError, match="not closed") as e:
    _ = source[paths.index(str(truncated))]
  assert str(truncated) in str(e.value)
  # A subject with two neutrals, and a bad intensity.
  (tmp_path / "M0001" / "M0001_NE00BL_F3D.wrl").write_text("x")
  with pytest.raises(ValueError, match="exactly one NE00"):
    bu3dfe.scan(tmp_path)
  (tmp_path / "M0001" / "M0001_NE00BL_F3D.wrl").unlink()
  (tmp_path / "M0001" / "M0001_AN05WH_F3D.wrl").write_text("x")
  with pytest.raises(ValueError, match="intensity 05"):
    bu3dfe.scan(tmp_path)


# ---------------------------------------------------------------------------
# FaceScape.
# ---------------------------------------------------------------------------

_FS_SUBJECTS = [str(i) for i in range(1, 11)]
_FS_MODELS = ((1, "neutral"), (2, "smile"), (5, "jaw_left"))


def _fs_vertices(base, subject, k):
  v = 90.0 * base * (1.0 + 0.02 * int(subject))
  v[:, 0] += 1.5 * (k - 1) * np.maximum(base[:, 2], 0.0)
  return v


def _write_facescape(root):
  base, faces = _sphere(3)  # 642 vertices.
  for s in _FS_SUBJECTS:
    for k, name in _FS_MODELS:
      path = root / s / "models_reg" / f"{k}_{name}.obj"
      path.parent.mkdir(parents=True, exist_ok=True)
      path.write_text(trimesh.exchange.obj.export_obj(
          trimesh.Trimesh(_fs_vertices(base, s, k), faces, process=False),
          digits=8))
    (root / s / "models_reg" / "1_neutral.obj.mtl").write_text("newmtl m")
  (root / "README.txt").write_text("not a subject")
  return base, faces


def test_facescape_decimation_split_and_neutral(tmp_path):
  base, faces = _write_facescape(tmp_path / "data")
  cache = tmp_path / "cache"
  test = facescape.load_facescape(tmp_path / "data", split="test", seed=3,
                                  num_vertices=150, cache_dir=cache)
  train = facescape.load_facescape(tmp_path / "data", split="train", seed=3,
                                   num_vertices=150, cache_dir=cache)
  # Subjects in numeric order; 30 % of 10 subjects, seeded.
  assert test.subject_names == tuple(_FS_SUBJECTS)
  picked = np.random.default_rng(3).permutation(10)[:3]
  want_test = {_FS_SUBJECTS[i] for i in picked}
  assert {test.subject_names[r.subject] for r in test.records} == want_test
  assert {train.subject_names[r.subject] for r in train.records} == (
      set(_FS_SUBJECTS) - want_test)
  assert len(test) == 3 * 3 and len(train) == 7 * 3
  # The template (subject 1's neutral) is decimated once to 150 vertices.
  template = _fs_vertices(base, "1", 1)
  dec = hierarchy.decimate(template, faces, num_vertices=150)
  np.testing.assert_array_equal(test.kept, dec.kept)
  np.testing.assert_array_equal(test.faces, dec.faces)
  assert test.num_vertices == 150 and test.faces.max() == 149
  assert len(list(cache.glob("facescape_decimation_*.npz"))) == 1
  for i in (0, 4, 8):
    item = test[i]
    s = test.subject_names[int(item["subject"])]
    k = _FS_MODELS[[m[0] - 1 for m in _FS_MODELS].index(
        int(item["expression"]))][0]
    assert test.expression_names[int(item["expression"])] == dict(
        _FS_MODELS)[k]
    assert item["vertices"].shape == (150, 3)
    np.testing.assert_allclose(item["vertices"],
                               _fs_vertices(base, s, k)[dec.kept], atol=1e-5)
    np.testing.assert_allclose(item["neutral"],
                               _fs_vertices(base, s, 1)[dec.kept], atol=1e-5)


def test_facescape_reuses_the_cached_decimation(tmp_path, monkeypatch):
  _write_facescape(tmp_path / "data")
  cache = tmp_path / "cache"
  first = facescape.load_facescape(tmp_path / "data", num_vertices=150,
                                   cache_dir=cache)

  def fail(*args, **kwargs):
    raise AssertionError("decimated again instead of reading the cache")

  monkeypatch.setattr(hierarchy, "decimate", fail)
  again = facescape.load_facescape(tmp_path / "data", num_vertices=150,
                                   cache_dir=cache)
  np.testing.assert_array_equal(first.kept, again.kept)
  np.testing.assert_array_equal(first.faces, again.faces)
  full = facescape.load_facescape(tmp_path / "data", num_vertices=None)
  assert full.num_vertices == 642 and full[0]["vertices"].shape == (642, 3)


def test_facescape_errors_name_the_problem(tmp_path):
  with pytest.raises(FileNotFoundError, match="FaceScape.*models_reg"):
    facescape.load_facescape(tmp_path / "nope")
  root = tmp_path / "data"
  _write_facescape(root)
  bad = root / "4" / "models_reg" / "2_smile.obj"
  bad.write_text("v 0 0 0\nv 1 0\n")
  wrong = root / "6" / "models_reg" / "5_jaw_left.obj"
  v, f = _sphere(2)
  wrong.write_text(trimesh.exchange.obj.export_obj(
      trimesh.Trimesh(v, f, process=False)))
  source = facescape.load_facescape(root, split="all", num_vertices=150)
  paths = [r.path for r in source.records]
  with pytest.raises(mesh_ops.MeshError, match="needs 3 coordinates") as e:
    _ = source[paths.index(str(bad))]
  assert str(bad) in str(e.value)
  with pytest.raises(mesh_ops.MeshError,
                     match="expected 642 vertices, got 162") as e:
    _ = source[paths.index(str(wrong))]
  assert str(wrong) in str(e.value)
  (root / "7" / "models_reg" / "1_neutral.obj").unlink()
  with pytest.raises(FileNotFoundError, match=r"\['7'\].*1_neutral.obj"):
    facescape.load_facescape(root, num_vertices=150)
  kept = facescape.load_facescape(root, split="all", num_vertices=150,
                                  require_neutral=False)
  i = next(k for k, r in enumerate(kept.records)
           if kept.subject_names[r.subject] == "7")
  assert not bool(kept[i]["has_neutral"])
  np.testing.assert_array_equal(kept[i]["neutral"], 0.0)
  (root / "3" / "models_reg" / "2_grin.obj").write_text("v 0 0 0\n")
  with pytest.raises(ValueError, match="does not match k=2"):
    facescape.scan(root)


def test_readers_are_importable_from_the_package():
  from disent_jax.data import readers  # pylint: disable=g-import-not-at-top
  assert readers.load_coma is coma.load_coma
  assert readers.load_bu3dfe is bu3dfe.load_bu3dfe
  assert readers.load_facescape is facescape.load_facescape
