r"""Exports SynthFace mesh sequences as a CoMA-layout directory of PLY files.

    python scripts/export_coma_layout.py --out=~/runs/coma_layout \
        --resolution=2.5k --num_subjects=12 --frames=10 --seed=0

Writes every mesh of `onthefly.mesh_generator(MeshConfig(resolution,
num_subjects, num_frames=frames, seed))` (12 CoMA expressions per subject)
in the layout `readers.load_coma` scans (`readers/coma.py`):

  <out>/subject_<s:03d>/<expression>/<expression>.<frame:06d>.ply

with frame = generator frame + 1 (CoMA's files count from 000001), as
binary little-endian PLY (float32 x y z, uchar/int32 triangle lists) in
metres, like the public CoMA files: the reader's default `scale=1000`
gives back SynthFace's millimetres (to float32 precision). Read it with

    python launch/train.py --config=configs/pointnet_id_vae.py:dataset=coma \
        --config.data.root=<out> \
        --config.data.reader_kwargs.num_vertices=<V printed here>

Each subject's first frame is SynthFace's near-neutral rest frame, the
neutral CoMA's `neutral="sequence_first"` takes; SynthFace's exact neutral
is not written (CoMA has none). Files are written atomically (temporary
name, then rename); a non-empty `--out` is refused, except that
`--overwrite` replaces an earlier export (only subject_<s:03d> entries).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import re
import shutil
import sys
import time
from typing import Callable

import numpy as np
import tqdm

from disent_jax.data import onthefly
from disent_jax.synthface import expression as expr
from disent_jax.synthface import template as tpl

METRES_PER_MM = 1e-3
_SUBJECT = re.compile(r"^subject_\d{3,}$")


def ply_bytes(vertices: np.ndarray, faces: np.ndarray) -> bytes:
  """A binary little-endian PLY of float32 vertices and triangle faces.

  Args:
    vertices: [V, 3] coordinates (written as float32).
    faces: [F, 3] vertex indices (written as int32 lists, uchar counts).

  Returns:
    The file's bytes.
  """
  vertices = np.asarray(vertices, "<f4")
  faces = np.asarray(faces)
  if vertices.ndim != 2 or vertices.shape[1] != 3:
    raise ValueError(f"vertices must be [V, 3], got {vertices.shape}")
  if faces.ndim != 2 or faces.shape[1] != 3:
    raise ValueError(f"faces must be [F, 3], got {faces.shape}")
  header = ("ply\nformat binary_little_endian 1.0\n"
            "comment SynthFace mesh, metres (scripts/export_coma_layout.py)\n"
            f"element vertex {vertices.shape[0]}\n"
            "property float x\nproperty float y\nproperty float z\n"
            f"element face {faces.shape[0]}\n"
            "property list uchar int vertex_indices\nend_header\n")
  rows = np.empty(faces.shape[0], [("n", "u1"), ("v", "<i4", (3,))])
  rows["n"] = 3
  rows["v"] = faces
  return header.encode("ascii") + vertices.tobytes() + rows.tobytes()


def coma_path(out: pathlib.Path, subject: int, expression: str,
              frame: int) -> pathlib.Path:
  """The CoMA-layout file of a 0-based subject and generator frame."""
  return (out / f"subject_{subject:03d}" / expression
          / f"{expression}.{frame + 1:06d}.ply")


def _write_atomic(path: pathlib.Path, data: bytes) -> None:
  tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
  tmp.write_bytes(data)
  os.replace(tmp, path)


def export(out: str | os.PathLike, *, resolution: str = "2.5k",
           num_subjects: int = 12, frames: int = 10, seed: int = 0,
           overwrite: bool = False,
           progress: Callable[[int], None] | None = None) -> dict:
  """Writes the CoMA-layout directory and returns a summary.

  Args:
    out: the dataset directory to create.
    resolution: SynthFace template resolution ("1k", "2.5k", "5k").
    num_subjects: number of subjects (>= 2).
    frames: frames per (subject, expression) sequence (>= 1).
    seed: SynthFace seed.
    overwrite: replace an existing `out` that holds only an earlier
      export (subject_<s:03d> directories).
    progress: called with 1 per written mesh.

  Returns:
    {"root", "resolution", "num_vertices", "num_faces", "subjects",
    "expressions", "frames", "meshes", "seconds", "bytes"}.

  Raises:
    FileExistsError: if `out` is a file, or a non-empty directory without
      `overwrite` or with other entries than subject directories.
    ValueError: on a bad count.
  """
  if num_subjects < 2:
    raise ValueError(f"num_subjects must be >= 2, got {num_subjects}")
  if frames < 1:
    raise ValueError(f"frames must be >= 1, got {frames}")
  out = pathlib.Path(out).expanduser()
  if out.exists() and not out.is_dir():
    raise FileExistsError(f"{out} exists and is not a directory")
  if out.exists() and any(out.iterdir()):
    if not overwrite:
      raise FileExistsError(f"{out} exists and is not empty (--overwrite "
                            "replaces an earlier export)")
    foreign = [p.name for p in out.iterdir()
               if not (p.is_dir() and _SUBJECT.match(p.name))]
    if foreign:
      raise FileExistsError(f"{out} holds {sorted(foreign)[:5]}, not only "
                            "subject_<s:03d> directories; --overwrite "
                            "replaces only an earlier export")
    shutil.rmtree(out)
  start = time.perf_counter()
  gen = onthefly.mesh_generator(onthefly.MeshConfig(
      resolution=resolution, num_subjects=num_subjects, num_frames=frames,
      num_test_subjects=1, seed=seed))
  faces = np.asarray(onthefly.topology(resolution)["faces"], np.int64)
  expressions = expr.COMA_EXPRESSIONS
  for e in expressions:
    for s in range(num_subjects):
      coma_path(out, s, e, 0).parent.mkdir(parents=True, exist_ok=True)
  total_bytes, num_vertices = 0, 0
  for _, ex in gen.iterate(np.arange(gen.num_examples)):
    vertices = np.asarray(ex["vertices"], np.float64) * METRES_PER_MM
    num_vertices = vertices.shape[0]
    data = ply_bytes(vertices, faces)
    _write_atomic(coma_path(out, int(ex["subject"]),
                            expressions[int(ex["expression"])],
                            int(ex["frame"])), data)
    total_bytes += len(data)
    if progress is not None:
      progress(1)
  return {"root": str(out), "resolution": resolution,
          "num_vertices": int(num_vertices), "num_faces": int(len(faces)),
          "subjects": num_subjects, "expressions": len(expressions),
          "frames": frames, "meshes": int(gen.num_examples),
          "seconds": round(time.perf_counter() - start, 3),
          "bytes": int(total_bytes)}


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--out", required=True, help="dataset directory")
  parser.add_argument("--resolution", default="2.5k",
                      choices=sorted(tpl.RESOLUTIONS),
                      help="SynthFace template resolution")
  parser.add_argument("--num_subjects", type=int, default=12)
  parser.add_argument("--frames", type=int, default=10,
                      help="frames per (subject, expression) sequence")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--overwrite", action="store_true",
                      help="replace an existing --out directory")
  args = parser.parse_args(argv)
  total = len(expr.COMA_EXPRESSIONS) * args.num_subjects * args.frames
  with tqdm.tqdm(total=total, unit="mesh") as bar:
    try:
      summary = export(args.out, resolution=args.resolution,
                       num_subjects=args.num_subjects, frames=args.frames,
                       seed=args.seed, overwrite=args.overwrite,
                       progress=bar.update)
    except (FileExistsError, ValueError) as e:
      print(f"error: {e}", file=sys.stderr)
      return 1
  print(json.dumps(summary, indent=2))
  return 0


if __name__ == "__main__":
  sys.exit(main())
