"""Datasets on disk (docs/protocol.md §2).

Kinds and layouts, label spaces, decoding, the dataset facts (cue-conflict categories, PUG class map, ImageNet-X
and ReaL annotations), VTAB (``vtab``) and the offline demo.
"""
