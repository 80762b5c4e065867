"""Toy ShinkaEvolve-style problem for tttd's tests: guess a hidden number."""


# EVOLVE-BLOCK-START
def guess(seed):
    return 3.0
# EVOLVE-BLOCK-END


def run_experiment(seed=0):
    return guess(seed)
