"""How messages name and count things: "an Autoencoder", "a DBN", "1 epoch", "2 epochs"; and
how they list and show the values a user gave (:func:`as_typed`)."""

import numpy as np

#: Letters whose English names begin with a vowel sound: "an RBM", "an MLP", "an SVD".
VOWEL_SOUND_LETTERS = frozenset("AEFHILMNORSX")


def with_article(word):
    """``word`` after "a" or "an", chosen by its first sound: "an Autoencoder", "a DBN",
    "an RBM" (a word opening with two capitals is an acronym, read letter by letter)."""
    acronym = len(word) > 1 and word[:2].isupper()
    vowel = word[:1] in VOWEL_SOUND_LETTERS if acronym else word[:1].lower() in "aeiou"
    return f"{'an' if vowel else 'a'} {word}"


def count(number, noun, plural=None):
    """``number`` and ``noun``, plural unless the number is 1: "1 epoch", "3 epochs",
    "0 epochs"; ``plural`` for a noun whose plural is not noun + "s" ("1 step of parallel
    tempering", "2 steps of parallel tempering")."""
    return f"{number} {noun if number == 1 else plural or noun + 's'}"


def listed(words):
    """Words as a sentence lists them: "a", "a and b", "a, b and c"."""
    return " and ".join([", ".join(words[:-1]), words[-1]] if len(words) > 1 else words)


def duration(seconds):
    """A time as it was measured: "2.3 s"; below a tenth of a second in milliseconds ("23
    ms"), below one "<1 ms": never "0.0 s" for an epoch that took time."""
    if seconds >= 0.1:
        return f"{seconds:.1f} s"
    if seconds >= 0.001:
        return f"{seconds * 1000:.0f} ms"
    return "<1 ms"


def as_typed(value):
    """``repr(value)`` as the user would type it: a NumPy number (a grid's value,
    ``np.linspace``'s) as the Python number it holds, inside a list, tuple or dict too, and an
    array as the list of its numbers. NumPy 2's repr, ``np.float64(2.0)``, is not what anyone
    wrote, nor what to type back."""
    return repr(_plain(value))


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if type(value) in (list, tuple):
        return type(value)(_plain(item) for item in value)
    if type(value) is dict:
        return {key: _plain(item) for key, item in value.items()}
    return value
