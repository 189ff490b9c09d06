"""Wrong arguments to the public functions are answered in one line that names the argument
and the fix, in the wording the rest of dlcore uses, not with Python's own message from deep
inside (an AttributeError on the argument, "expected str, bytes or os.PathLike object")."""
import numpy as np
import pytest

import dlcore


@pytest.fixture(scope="module")
def rbm():
    X = np.random.default_rng(0).random((20, 16)).astype(np.float32)
    return dlcore.BernoulliRBM(n_hidden=2, epochs=1, backend="reference").fit(X)


def test_save_with_the_model_and_the_path_swapped_says_which_comes_first(rbm, tmp_path):
    with pytest.raises(TypeError, match=r"^path must be a file name \(str or os\.PathLike\), "
                                        r"got a BernoulliRBM: call dlcore\.save\(model, path\) "
                                        r"\(the model first\)$"):
        dlcore.save(str(tmp_path / "model.h5"), rbm)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("path, given", [(None, "None"), (3, "an int")])
def test_save_and_load_refuse_a_path_that_is_no_file_name_in_one_line(rbm, path, given):
    with pytest.raises(TypeError, match=rf"^path must be a file name \(str or os\.PathLike\), "
                                        rf"got {given}: call dlcore\.save\(model, path\)$"):
        dlcore.save(rbm, path)
    with pytest.raises(TypeError, match=rf"^path must be a file name \(str or os\.PathLike\), "
                                        rf"got {given}: call dlcore\.load\(path\)$"):
        dlcore.load(path)


def test_a_path_given_as_bytes_or_a_pathlib_path_still_saves_and_loads(rbm, tmp_path):
    dlcore.save(rbm, bytes(tmp_path / "bytes.h5"))
    dlcore.save(rbm, tmp_path / "path.h5")
    for path in (bytes(tmp_path / "bytes.h5"), tmp_path / "path.h5"):
        np.testing.assert_array_equal(dlcore.load(path).W, rbm.W)


@pytest.mark.parametrize("call, name", [
    (lambda model: dlcore.receptive_fields(model), "receptive_fields"),
    (lambda model: dlcore.gradcheck(model, np.zeros((2, 16)), np.zeros(2, int)), "gradcheck"),
    (lambda model: dlcore.adversarial.fgsm(model, np.zeros((2, 16)), np.zeros(2, int), 0.1),
     "fgsm")])
def test_the_functions_of_a_network_refuse_another_model_in_one_line(rbm, call, name):
    with pytest.raises(TypeError, match=rf"^{name} takes a dlcore network \(Sequential or "
                                        rf"Model\), got a BernoulliRBM$"):
        call(rbm)
    with pytest.raises(TypeError, match=rf"^{name} takes a dlcore network .*got a str; load a "
                                        rf"saved one with dlcore\.load\(path\)$"):
        call("lenet5.h5")


@pytest.mark.parametrize("build", [dlcore.models.mlp, dlcore.models.lenet5,
                                   dlcore.models.resnet_small])
def test_the_model_builders_name_n_classes_when_they_refuse_it(build):
    """``mlp(n_classes=0)`` said "units must be >= 1": the output Dense's word, not the
    caller's; stacked_network named n_classes already."""
    with pytest.raises(ValueError, match=r"^n_classes must be >= 1, got 0$"):
        build(n_classes=0)
    with pytest.raises(ValueError, match=r"^n_classes must be an integer, got '10'$"):
        build(n_classes="10")


def test_mlp_takes_a_row_width_as_one_number_as_input_does():
    """``dlcore.Input(shape=784)`` and a Dense's ``input_shape=784`` take one number; mlp's
    ``input_shape=784`` raised "'int' object is not iterable"."""
    model = dlcore.models.mlp(input_shape=784, hidden=8)
    assert model.input_shape == (784,)
    assert [layer.name for layer in model.layers] == ["hidden_1", "output"]


def test_per_layer_lists_of_the_wrong_length_are_counted_in_english():
    """"a list of 1 dicts", "lists 1 values": one of each, said as one."""
    X = np.zeros((6, 4), np.float32)
    with pytest.raises(ValueError, match=r"^rbm must be one dict, or a list of 1 dict \(one per "
                                         r"RBM\), got \[\{\}, \{\}\]$"):
        dlcore.DBN(hidden=[3], rbm=[{}, {}]).fit(X)
    with pytest.raises(ValueError, match=r"^autoencoder must be one dict, or a list of 1 dict "):
        dlcore.StackedAutoencoder(hidden=[3], autoencoder=[{}, {}]).fit(X)
    with pytest.raises(ValueError, match=r"^learning_rate lists 1 value for 2 RBMs "):
        dlcore.DBN(hidden=[3, 2], learning_rate=[0.1]).fit(X)
