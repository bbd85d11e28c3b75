"""One module per DVC stage (verify, infer, analyze, cka, vtab_features, probe, report, fidelity) and the CLI's
other commands: each reads params.yaml, hands every library function its own config section, prints what it did.

``params`` loads and cross-checks params.yaml, ``paths`` joins the output names of ``params.outputs`` to the result
folders; dvc.yaml runs these stages through the ``beyond-imagenet`` command (``cli``).
"""
