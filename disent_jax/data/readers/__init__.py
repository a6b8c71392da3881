"""Readers for real 3D face datasets stored in a user-supplied directory.

Each `load_*` function scans the dataset's public on-disk layout, applies
the split of paper 002 §IV-A and returns a random-access `MeshSource`
(`__len__`, `__getitem__` -> dict of numpy arrays, vertices in mm) that
`disent_jax.data.pipeline.batched_iterator` consumes; `source.faces` is
the shared triangle list. See each module for the layout, units, split and
neutral conventions.

  coma.load_coma          CoMA PLY sequences (5023 vertices).
  bu3dfe.load_bu3dfe      registered BU-3DFE VRML scans, rigidly aligned.
  facescape.load_facescape  FaceScape TU OBJ models, decimated to 4547.
  cache.load_cached       any of them through an on-disk array cache
                          (parse the files once, then memory-mapped .npy;
                          `python launch/cache_meshes.py`).

The parsers never enter the Python compiler, so sources are safe to read
from grain's reader threads (and pickle for its worker processes).
"""

from disent_jax.data.readers.bu3dfe import BU3DFESource
from disent_jax.data.readers.bu3dfe import load_bu3dfe
from disent_jax.data.readers.cache import build_cache
from disent_jax.data.readers.cache import CachedSource
from disent_jax.data.readers.cache import load_cached
from disent_jax.data.readers.coma import CoMASource
from disent_jax.data.readers.coma import load_coma
from disent_jax.data.readers.common import MeshRecord
from disent_jax.data.readers.common import MeshSource
from disent_jax.data.readers.facescape import FaceScapeSource
from disent_jax.data.readers.facescape import load_facescape
from disent_jax.data.readers.formats import read_mesh
from disent_jax.data.readers.formats import read_obj
from disent_jax.data.readers.formats import read_ply
from disent_jax.data.readers.formats import read_vrml

__all__ = [
    "BU3DFESource", "CachedSource", "CoMASource", "FaceScapeSource",
    "MeshRecord", "MeshSource", "build_cache", "load_bu3dfe", "load_cached",
    "load_coma", "load_facescape", "read_mesh", "read_obj", "read_ply",
    "read_vrml",
]
