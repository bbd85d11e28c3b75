"""The DVC stages and the CLI's other commands, each stage in a module of its own.

The stages: verify, infer, analyze, cka, vtab_features, probe, report, fidelity. Each reads params.yaml, hands every
library function its own config section and prints what it did.

``params`` loads and cross-checks params.yaml, ``paths`` joins the output names of ``params.outputs`` to the result
folders; dvc.yaml runs these stages through the ``beyond-imagenet`` command (``cli``).
"""
