"""Toy OpenEvolve-style problem for tttd's tests: guess a hidden number."""


# EVOLVE-BLOCK-START
def guess():
    return 3.0
# EVOLVE-BLOCK-END


def run():
    return guess()
