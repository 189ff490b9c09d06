"""One name per concept across the public API, and aliases that behave as one.

Each test holds a place where two spellings of one setting, or two classes doing the same job,
disagreed: a keyword one class took and its sibling refused, or two spellings given together
where one silently won."""
import pytest

from dlcore import layers

#: the layers that take dlcore's ``stride`` and Keras's ``strides``
STRIDED = {
    "Conv2D": lambda **kw: layers.Conv2D(2, 2, **kw),
    "LocallyConnected2D": lambda **kw: layers.LocallyConnected2D(2, 2, **kw),
    "Conv2DTranspose": lambda **kw: layers.Conv2DTranspose(2, 2, **kw),
    "MaxPool2D": lambda **kw: layers.MaxPool2D(2, **kw),
    "AvgPool2D": lambda **kw: layers.AvgPool2D(2, **kw),
    "L2Pool2D": lambda **kw: layers.L2Pool2D(2, **kw),
}


@pytest.mark.parametrize("name", sorted(STRIDED))
def test_stride_and_strides_that_disagree_are_refused_in_one_line(name):
    with pytest.raises(ValueError, match=r"^give (stride|strides) or (strides|stride) \(the same "
                                         r"setting\), not both: .*disagree$"):
        STRIDED[name](stride=3, strides=2)


@pytest.mark.parametrize("name", sorted(STRIDED))
def test_either_spelling_of_the_stride_or_both_agreeing_give_that_stride(name):
    for keywords in ({"stride": 2}, {"strides": 2}, {"stride": (2, 2), "strides": 2}):
        assert tuple(STRIDED[name](**keywords).stride) == (2, 2), keywords
