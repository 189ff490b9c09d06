"""One name per concept across the public API, and aliases that behave as one.

Each test holds a place where two spellings of one setting, or two classes doing the same job,
disagreed: a keyword one class took and its sibling refused, or two spellings given together
where one silently won."""
import pytest

import dlcore
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


def test_mlp_takes_one_whole_number_as_one_hidden_layer_as_the_dbn_does():
    """``hidden=100`` is one hidden layer for DBN, DBNClassifier, StackedAutoencoder and
    scikit-learn's MLPClassifier; models.mlp raised "'int' object is not iterable"."""
    model = dlcore.models.mlp(input_shape=(16,), hidden=8, n_classes=3)
    assert [layer.name for layer in model.layers] == ["hidden_1", "output"]
    assert model.get_layer("hidden_1").units == 8


@pytest.mark.parametrize("hidden", ["100", None, 2.5])
def test_mlp_refuses_a_hidden_that_is_no_size_in_one_line(hidden):
    with pytest.raises(ValueError, match=r"^hidden must be a whole number of units \(one hidden "
                                         r"layer, as hidden=100\) or a list of them"):
        dlcore.models.mlp(input_shape=(16,), hidden=hidden)
