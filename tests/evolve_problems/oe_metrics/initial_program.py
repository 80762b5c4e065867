"""Toy OpenEvolve-style problem for tttd's tests: a filter width (no combined_score)."""


# EVOLVE-BLOCK-START
def width():
    return 3
# EVOLVE-BLOCK-END


def run():
    return width()
