"""How messages name and count things: "an Autoencoder", "a DBN", "1 epoch", "2 epochs"."""

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


def duration(seconds):
    """A time as it was measured: "2.3 s"; below a tenth of a second in milliseconds ("23
    ms"), below one "<1 ms": never "0.0 s" for an epoch that took time."""
    if seconds >= 0.1:
        return f"{seconds:.1f} s"
    if seconds >= 0.001:
        return f"{seconds * 1000:.0f} ms"
    return "<1 ms"
