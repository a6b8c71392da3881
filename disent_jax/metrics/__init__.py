"""Evaluation metrics of the four papers and the standard ones.

Modules (all imported with the package):
  mesh_errors: E_rec, E_dis, AVD_neu, per-vertex error maps (paper 002).
  alignment: rigid / similarity Procrustes, scaled ICP, the MICC
    point-to-plane error around the nose tip (paper 003 §4.2).
  normals: normal-map angular error and shares under 35°/40° (paper 000).
  probes: k-fold linear-probe accuracy (linear SVM or logistic, pure JAX;
    paper 000 Tables 2-3).
  clusters: silhouette and leave-one-out k-NN accuracy of a latent by a
    factor (paper 000 Figs. 14-15).
  disentanglement: DS (paper 001 eq. 9), W-direction consistency (paper 001
    Table 2), MIG and DCI.
  linear: ridge and PCA linear models with a validation-chosen ridge, the
    linear baselines of every results table.
  fid: Fréchet distance with a named, pluggable feature network.
  verification: same/different-identity pair scores, ROC-AUC, EER, TAR@FAR.
"""

from disent_jax.metrics import alignment
from disent_jax.metrics import clusters
from disent_jax.metrics import disentanglement
from disent_jax.metrics import fid
from disent_jax.metrics import linear
from disent_jax.metrics import mesh_errors
from disent_jax.metrics import normals
from disent_jax.metrics import probes
from disent_jax.metrics import verification

__all__ = [
    "alignment", "clusters", "disentanglement", "fid", "linear", "mesh_errors",
    "normals", "probes", "verification",
]
