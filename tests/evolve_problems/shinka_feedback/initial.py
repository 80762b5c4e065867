# EVOLVE-BLOCK-START
def approximate(x):
    return x
# EVOLVE-BLOCK-END
