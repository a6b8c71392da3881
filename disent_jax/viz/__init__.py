"""Figures and run reports (matplotlib, Agg backend).

Modules:
  grids: labelled image grids and PNG writing.
  mesh_render: meshes to PNG with the project's rasterizer, head-on light,
    per-vertex error heat maps with a colour bar.
  panels: the papers' figure formats (input | reconstruction | identity |
    expression, transfer matrices, interpolation strips, relighting rows).
  scatter: PCA / t-SNE scatter of latents coloured by a factor.
  export: .ply / .obj export through trimesh.
  report: `write_report` (report.md + flat metrics.json in a workdir).
"""

from disent_jax.viz import export
from disent_jax.viz import grids
from disent_jax.viz import mesh_render
from disent_jax.viz import panels
from disent_jax.viz import report
from disent_jax.viz import scatter

__all__ = ["export", "grids", "mesh_render", "panels", "report", "scatter"]
