from helper import GUESS, EFFORT


def solve():
    return GUESS, EFFORT
