"""LocallyConnected2D: a convolution without weight sharing, lecture "Supervised learning"
(CVPR 2014), slide "Locally Connected Layer", and lecture "Deep Neural Networks", slide "Fully
Connected vs. Convolutional Net". Oracles: the slide's equation as plain loops, central
differences, the reference for the kernels, and the slides' parameter counts."""
import numpy as np
import pytest

import dlcore
from conftest import requires_cuda
from dlcore.layers import Conv2D, Conv2DTranspose, Dense, Flatten, LocallyConnected2D


def images(n=3, shape=(2, 6, 5), seed=0):
    return np.random.default_rng(seed).normal(size=(n,) + shape)


def test_each_position_has_its_own_filters_as_the_equation_says():
    x = images(shape=(2, 6, 6))
    layer = LocallyConnected2D(3, (3, 2), stride=(1, 2), padding=1)
    layer.build(x.shape[1:], backend="reference", dtype=np.float64)
    y = layer(x)
    kernel, bias = layer.get_weights()
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    expected = np.empty(y.shape)
    for row in range(y.shape[2]):
        for column in range(y.shape[3]):
            field = padded[:, :, row:row + 3, 2 * column:2 * column + 2]
            expected[:, :, row, column] = np.einsum("ncij,fcij->nf", field,
                                                    kernel[row, column]) + bias[:, row, column]
    np.testing.assert_allclose(y, expected, atol=1e-12)
    assert kernel.shape == (6, 4, 3, 2, 3, 2) and bias.shape == (3, 6, 4)
    assert not np.allclose(kernel[0, 0], kernel[1, 1])   # no sharing


def network(backend="reference", padding="same", activation="relu"):
    model = dlcore.Sequential([
        LocallyConnected2D(2, (3, 2), stride=2, padding=padding, activation=activation,
                           kernel_regularizer=dlcore.regularizers.L2(0.1), name="local"),
        Flatten(), Dense(3, activation="softmax")], input_shape=(2, 5, 4), backend=backend,
        seed=1)
    model.compile("sgd", "categorical_crossentropy")
    return model


@pytest.mark.parametrize("padding, activation", [("same", "relu"), ("valid", "tanh")])
def test_back_propagation_agrees_with_central_differences(padding, activation):
    labels = np.eye(3)[[0, 2, 1]]
    errors = dlcore.gradient_check.gradcheck(network(padding=padding, activation=activation),
                                             images(shape=(2, 5, 4)), labels, verbose=False)
    assert max(errors.values()) < 1e-6


def trained(backend):
    model = network(backend)
    x, labels = images(shape=(2, 5, 4)).astype(np.float32), np.eye(3, dtype=np.float32)[[0, 2, 1]]
    model.train_on_batch(x, labels)
    return model.predict(x), model.get_weights()


@pytest.mark.parametrize("backend", ["cpu", pytest.param("cuda", marks=requires_cuda)])
def test_kernels_train_as_the_reference(backend):
    outputs, weights = trained(backend)
    expected_outputs, expected_weights = trained("reference")
    np.testing.assert_allclose(outputs, expected_outputs, atol=1e-6)
    for mine, expected in zip(weights, expected_weights):
        np.testing.assert_allclose(mine, expected, atol=1e-6)


def test_the_slides_parameter_counts():
    # "Supervised learning", "Locally Connected Layer": 200x200 image, 40K hidden units,
    # 10x10 filters: 4M parameters (the weights; one bias per hidden unit besides). Every
    # field inside the image, as the slide counts (padding "same" would leave the fields at
    # the border fewer weights: those in the padding are not counted, as tf.keras 2's)
    local = dlcore.Sequential([LocallyConnected2D(1, 10, kernel_initializer="zeros")],
                              input_shape=(1, 209, 209), backend="reference")
    summary = local.summary(print_fn=None)
    assert summary.rows[0].output_shape == (1, 200, 200)            # 40K hidden units
    assert summary.total_weights == 4_000_000 and summary.total_biases == 40_000
    # the 200x200 image itself, padding "same": the border fields' cells in the padding are not
    # counted (docs/networks.md quotes this count), though get_weights keeps a place for them
    padded = dlcore.Sequential([LocallyConnected2D(1, 10, padding="same",
                                                   kernel_initializer="zeros")],
                               input_shape=(1, 200, 200), backend="reference")
    assert padded.summary(print_fn=None).total_weights == 1975 ** 2 == 3_900_625
    assert padded.count_params() == 3_900_625 + 40_000
    assert sum(array.size for array in padded.get_weights()) == 4_000_000 + 40_000
    # the convolution with the same fields shares them: 100 weights
    conv = dlcore.Sequential([Conv2D(1, 10, padding="same")], input_shape=(1, 200, 200),
                             backend="reference")
    assert conv.summary(print_fn=None).total_weights == 100
    # "Deep Neural Networks": 400,000 hidden units with 10x10 fields, 40 million parameters
    # (ten such maps; 40,000 x 400,000 = 16 billion fully connected, too many to build here)
    hidden_units = 10 * int(np.prod(summary.rows[0].output_shape))
    assert hidden_units == 400_000 and 10 * summary.total_weights == 40_000_000
    assert hidden_units * 200 * 200 == 16_000_000_000


def test_model_files_keep_it_and_keras_files_refuse_it_in_one_line(tmp_path):
    model = network()
    model.compile("adam", "categorical_crossentropy")   # its state too: Adam's moments
    model.train_on_batch(images(shape=(2, 5, 4)), np.eye(3)[[0, 2, 1]])
    dlcore.save(model, tmp_path / "m.h5")
    back = dlcore.load(tmp_path / "m.h5")
    x = images(shape=(2, 5, 4)).astype(np.float32)
    np.testing.assert_array_equal(back.predict(x), model.predict(x))
    assert back.get_layer("local").get_config() == model.get_layer("local").get_config()
    with pytest.raises(ValueError, match=r"layer 'local' \(LocallyConnected2D\) cannot be "
                                         r"written to a Keras file: Keras 3 removed "
                                         r"LocallyConnected2D") as caught:
        model.save(tmp_path / "m.keras")   # Keras's model.save writes Keras's file
    assert "\n" not in str(caught.value)
    assert not (tmp_path / "m.keras").exists()


@pytest.mark.parametrize("layer", [LocallyConnected2D, Conv2DTranspose])
def test_keras_constraint_arguments_are_refused_in_one_line_and_none_taken(layer):
    """Keras's signatures (Conv2DTranspose; tf.keras 2's LocallyConnected2D) have
    kernel_constraint and bias_constraint: a TypeError about an unexpected keyword was all a
    user porting one got."""
    with pytest.raises(ValueError, match=r"kernel_constraint=MaxNorm\(max_value=2\): dlcore's "
                                         r"max-norm bounds the kernels of Dense and Conv2D only"):
        layer(2, 3, kernel_constraint=dlcore.regularizers.MaxNorm(2.0))
    with pytest.raises(ValueError, match="bias_constraint='non_neg': dlcore constrains kernels"):
        layer(2, 3, bias_constraint="non_neg")
    assert layer(2, 3, kernel_constraint=None, bias_constraint=None).filters == 2
