from guesses import GUESS, EFFORT


def run_experiment():
    return [GUESS, EFFORT]
