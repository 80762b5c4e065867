"""Toy OpenEvolve-style problem with cascade evaluation."""
import time


# EVOLVE-BLOCK-START
def guess():
    return 2.0
# EVOLVE-BLOCK-END


def run():
    return guess()
