"""Learned sharpening: networks, training, checkpoints, weights and sliding-window inference.

This is the only part of densharp that imports torch (install the ``[ml]`` extra). Import submodules
explicitly (``from densharp.ml.tiling import sliding_window``); nothing is loaded here.
"""
