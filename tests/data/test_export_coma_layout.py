"""scripts/export_coma_layout.py: SynthFace written in CoMA's layout reads
back through `readers.load_coma` as the generated meshes."""

import importlib.util
import pathlib

import numpy as np
import pytest

from disent_jax.data import onthefly
from disent_jax.data.readers import coma
from disent_jax.data.readers import ply
from disent_jax.synthface import expression as expr

_SCRIPT = (pathlib.Path(__file__).resolve().parents[2] / "scripts"
           / "export_coma_layout.py")
_spec = importlib.util.spec_from_file_location("export_coma_layout", _SCRIPT)
export_coma_layout = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(export_coma_layout)

_SUBJECTS, _FRAMES = 2, 3


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
  root = tmp_path_factory.mktemp("coma_layout")
  assert export_coma_layout.main([
      f"--out={root}", "--resolution=1k", f"--num_subjects={_SUBJECTS}",
      f"--frames={_FRAMES}", "--seed=3"]) == 0
  gen = onthefly.mesh_generator(onthefly.MeshConfig(
      resolution="1k", num_subjects=_SUBJECTS, num_frames=_FRAMES,
      num_test_subjects=1, seed=3))
  meshes = {(int(ex["subject"]), int(ex["expression"]), int(ex["frame"])):
            ex["vertices"] for _, ex in gen.iterate(np.arange(
                gen.num_examples))}
  return root, meshes


def test_layout_and_file_names_follow_coma(exported):
  root, meshes = exported
  entries = coma.scan(root)
  assert len(entries) == len(meshes) == _SUBJECTS * 12 * _FRAMES
  assert sorted({e[0] for e in entries}) == ["subject_000", "subject_001"]
  assert sorted({e[1] for e in entries}) == sorted(coma.EXPRESSIONS)
  assert {e[2] for e in entries} == set(range(1, _FRAMES + 1))
  path = root / "subject_001" / "mouth_up" / "mouth_up.000003.ply"
  assert path.read_bytes().startswith(b"ply\nformat binary_little_endian")


def test_load_coma_reads_the_generated_meshes(exported):
  root, meshes = exported
  source = coma.load_coma(root, split="all", num_vertices=0)
  faces = onthefly.topology("1k")["faces"]
  assert len(source) == len(meshes)
  assert source.num_vertices == meshes[(0, 0, 0)].shape[0]
  np.testing.assert_array_equal(source.faces, faces)
  for i in range(len(source)):
    item = source[i]
    s = source.subject_names[int(item["subject"])]
    x = source.expression_names[int(item["expression"])]
    key = (int(s.split("_")[1]), expr.COMA_EXPRESSIONS.index(x),
           int(item["frame"]) - 1)
    want = meshes[key]
    # Metres in float32, then x 1000: float32 precision of the mm values.
    np.testing.assert_allclose(item["vertices"], want, rtol=1e-6,
                               atol=1e-6 * np.abs(want).max())
    first = meshes[key[:2] + (0,)]
    np.testing.assert_allclose(item["neutral"], first, rtol=1e-6,
                               atol=1e-6 * np.abs(first).max())


def test_ply_bytes_round_trip_through_the_reader(tmp_path):
  rng = np.random.default_rng(0)
  vertices = rng.normal(size=(7, 3))
  faces = np.array([[0, 1, 2], [2, 3, 4], [4, 5, 6]])
  path = tmp_path / "m.ply"
  path.write_bytes(export_coma_layout.ply_bytes(vertices, faces))
  v, f = ply.read_ply(path)
  np.testing.assert_array_equal(v, np.float32(vertices))
  np.testing.assert_array_equal(f, faces)


def test_refuses_a_non_empty_directory(tmp_path):
  (tmp_path / "x").write_text("keep")
  with pytest.raises(FileExistsError, match="not empty"):
    export_coma_layout.export(tmp_path, resolution="1k", num_subjects=2,
                              frames=1)
  assert export_coma_layout.main([f"--out={tmp_path}", "--resolution=1k",
                                  "--num_subjects=2", "--frames=1"]) == 1
  with pytest.raises(FileExistsError, match="only an earlier export"):
    export_coma_layout.export(tmp_path, resolution="1k", num_subjects=2,
                              frames=1, overwrite=True)
  assert (tmp_path / "x").read_text() == "keep"


def test_overwrite_replaces_an_earlier_export(tmp_path):
  kwargs = dict(resolution="1k", num_subjects=2, frames=1)
  export_coma_layout.export(tmp_path, **kwargs)
  stale = tmp_path / "subject_001" / "eyebrow" / "eyebrow.000002.ply"
  stale.write_bytes(b"stale")
  summary = export_coma_layout.export(tmp_path, overwrite=True, **kwargs)
  assert not stale.exists()
  assert summary["meshes"] == len(coma.scan(tmp_path)) == 24
