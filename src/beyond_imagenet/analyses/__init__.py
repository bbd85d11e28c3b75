"""Cache consumers of the ImageNet family (docs/protocol.md §3-§9).

Each analysis reads the inference caches and returns result records and the paper's figures; ``registry`` lists
them, ``cka`` turns the CKA pass into records.
"""
