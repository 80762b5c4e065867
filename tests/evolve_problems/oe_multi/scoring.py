TARGET = 7


def grade(guess):
    return 1.0 / (1 + abs(guess - TARGET))
