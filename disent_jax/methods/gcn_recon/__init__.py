"""Paper 003: semi-supervised 3D face reconstruction with GCN decoders.

In progress: the networks and the image formation (`model`) and the
objective's terms (`objective`) are here and tested; the training steps,
the harness method and the evaluation follow (see README.md).
"""
