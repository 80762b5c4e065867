"""Toy OpenEvolve-style problem with a noisy evaluator."""


# EVOLVE-BLOCK-START
def level():
    return 1.0
# EVOLVE-BLOCK-END
