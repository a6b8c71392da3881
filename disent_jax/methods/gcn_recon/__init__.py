"""Paper 003: semi-supervised 3D face reconstruction with GCN decoders.

In progress: the networks and the image formation (`model`) are here and
tested; the losses' wiring, the training steps and the harness method
follow (see README.md).
"""
