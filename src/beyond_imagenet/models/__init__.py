"""Models: specs and the catalogue, one backend per library (timm, OpenCLIP), preprocessing, weights, layer taps.

docs/protocol.md §1; docs/architecture.md lists what goes where.
"""
