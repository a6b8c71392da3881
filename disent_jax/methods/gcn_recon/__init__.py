"""Paper 003: semi-supervised 3D face reconstruction with GCN decoders.

In progress (see README.md): stage 1 trains through the harness
(`method.build`, `configs/gcn_recon.py`); stage 2 and the MICC-style
evaluation are not here yet.
"""
