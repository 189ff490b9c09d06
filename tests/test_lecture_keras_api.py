"""Every Keras snippet of lecture "Deep learning I" (section "Deep learning with Keras", and the
Sequential model of slide "Deep neural networks"), run with ``dlcore`` in place of ``keras``.

The snippets are copied as the slides print them and adapted only where dlcore differs on
purpose: images are NCHW (``Input(shape=(3, 256, 256))`` where Keras writes ``(256, 256, 3)``),
and the data are tiny random arrays so that each test runs in seconds (the slides leave
``x_train``, ``data``, ``some_batch_generator`` to the reader). Each test names its slide and
checks what the snippet is for: shapes and parameter counts, a loss that goes down, weights
that round-trip equal, a vision model shared weights and all.

The lecture's regularisation slides ("Data augmentation", "dropout", "Early stopping",
"Xavier (or Glorot) initialization") show no code; the last tests write them the Keras way."""
import json

import numpy as np
import pytest

import dlcore

RS = np.random.default_rng(2024)


def labelled(n, features, classes=10, seed=0):
    """(x, one-hot y): rows in [0, 1) whose class is the argmax of a fixed linear map (a
    problem a small network learns within a few epochs)."""
    rs = np.random.default_rng(seed)
    x = rs.random((n, features), dtype=np.float32)
    teacher = np.random.default_rng(99).standard_normal((features, classes))
    return x, np.eye(classes, dtype=np.float32)[(x @ teacher).argmax(axis=1)]


def the_sequential_classifier():
    """Slide "Defining a sequential model for NN for classification" (its code, verbatim)."""
    from dlcore.models import Sequential
    model = Sequential()
    from dlcore.layers import Dense

    model.add(Dense(units=64, activation='relu', input_dim=100))
    model.add(Dense(units=10, activation='softmax'))
    return model


# -- slide "Deep neural networks" ------------------------------------------------------------
def test_deep_neural_networks_slide_sequential_of_two_dense_layers():
    # "Every layer has an input tensor, and output tensor and (optionally) parameters."
    nn = dlcore.models.Sequential()
    nn.add(dlcore.layers.Dense(100, activation='sigmoid'))
    nn.add(dlcore.layers.Dense(10, activation='softmax'))
    x, _ = labelled(5, 784)
    probabilities = nn.predict(x)   # the input shape comes from the first data
    assert probabilities.shape == (5, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, rtol=1e-5)
    assert nn.count_params() == (784 * 100 + 100) + (100 * 10 + 10)


# -- slide "Defining a sequential model for NN for classification" --------------------------
def test_sequential_model_for_classification_100_inputs_64_hidden_10_classes():
    model = the_sequential_classifier()
    # "100-dimensional inputs, 64 neurons in the hidden layer, 10 classes"
    assert model.built and model.input_shape == (100,) and model.output_shape == (10,)
    summary = model.summary(print_fn=None)
    assert [row.output_shape for row in summary.rows] == [(64,), (10,)]
    assert model.count_params() == summary.total_params == 100 * 64 + 64 + 64 * 10 + 10


def test_a_sequential_model_is_built_as_layers_come_and_keeps_the_earlier_weights():
    """Keras' behaviour behind the slide: once the input shape is known, add builds the new
    layer only; a layer that does not fit is refused and leaves the model as it was."""
    model = the_sequential_classifier()
    model.compile(loss='categorical_crossentropy', optimizer='sgd')
    model.fit(*labelled(32, 100), epochs=1, verbose=0)
    trained = model.get_weights()
    model.add(dlcore.layers.Dense(3, activation='softmax'))
    assert model.output_shape == (3,) and len(model.get_weights()) == 6
    for before, after in zip(trained, model.get_weights()):
        np.testing.assert_array_equal(before, after)
    with pytest.raises(ValueError, match="Conv2D needs"):
        model.add(dlcore.layers.Conv2D(2, 3))   # needs images, gets rows
    assert len(model.layers) == 3 and model.output_shape == (3,)
    model.compile(loss='categorical_crossentropy', optimizer='sgd')
    model.fit(*labelled(32, 100, classes=3), epochs=1, verbose=0)   # trains on, 3 classes


# -- slide "Dense (fully-connected layer) parameters (similar for convolutional layers)" --------
def test_dense_takes_every_parameter_of_the_slide_at_its_default():
    layer = dlcore.layers.Dense(10,
                                activation=None,
                                use_bias=True,
                                kernel_initializer='glorot_uniform',
                                bias_initializer='zeros',
                                kernel_regularizer=None,
                                bias_regularizer=None,
                                activity_regularizer=None,
                                kernel_constraint=None,
                                bias_constraint=None)
    assert layer.get_config() == dlcore.layers.Dense(10).get_config()
    conv = dlcore.layers.Conv2D(4, (3, 3), activity_regularizer=None, bias_constraint=None)
    assert conv.get_config() == dlcore.layers.Conv2D(4, (3, 3)).get_config()
    # what dlcore does not have is refused in one line that names the alternative
    with pytest.raises(ValueError) as caught:
        dlcore.layers.Dense(10, bias_constraint="max_norm")
    assert "bias_constraint" in str(caught.value) and "\n" not in str(caught.value)


# -- slide "Training the NN model" (cross-entropy, SGD with momentum 0.9, learning rate 0.01) --
def test_compile_with_keras_loss_function_and_sgd_lr_momentum():
    import dlcore as keras  # the slide spells the modules keras.losses, keras.optimizers
    model = the_sequential_classifier()
    model.compile(loss=keras.losses.categorical_crossentropy,
                  optimizer=keras.optimizers.SGD(lr=0.01, momentum=0.9))
    assert isinstance(model.loss, dlcore.losses.CrossEntropy)
    assert isinstance(model.optimizer, dlcore.optimizers.SGD)
    assert (model.optimizer.learning_rate, model.optimizer.momentum) == (0.01, 0.9)
    # called on arrays, the Keras function is each sample's -sum_k y_k log p_k
    y_true = np.array([[0, 1, 0], [1, 0, 0]])
    y_pred = np.array([[0.2, 0.7, 0.1], [0.5, 0.25, 0.25]])
    np.testing.assert_allclose(keras.losses.categorical_crossentropy(y_true, y_pred),
                               [-np.log(0.7), -np.log(0.5)], rtol=1e-12)
    with pytest.raises(ValueError, match="not both"):
        keras.optimizers.SGD(learning_rate=0.1, lr=0.01)


# -- slide "Training the NN model: Five epochs with batch size of 32" ------------------------
def test_fit_five_epochs_with_batch_size_32_lowers_the_loss(capsys):
    model = the_sequential_classifier()
    model.compile(loss=dlcore.losses.categorical_crossentropy,
                  optimizer=dlcore.optimizers.SGD(lr=0.01, momentum=0.9))
    # x_train and y_train are Numpy arrays --just like in the Scikit-Learn API.
    x_train, y_train = labelled(96, 100)
    model.fit(x_train, y_train, epochs=5, batch_size=32)
    losses = model.history["loss"]
    assert len(losses) == 5 and losses[-1] < losses[0]
    assert model.n_updates == 5 * 3                        # 96 samples, batches of 32
    assert "epoch 5/5" in capsys.readouterr().err          # verbose=1: a line per epoch


# -- slide "Or, feed batches manually in a training loop" -------------------------------------
def test_train_on_batch_in_a_manual_loop():
    model = the_sequential_classifier()
    model.compile(loss=dlcore.losses.categorical_crossentropy,
                  optimizer=dlcore.optimizers.SGD(lr=0.01, momentum=0.9))
    x, y = labelled(64, 100)

    def some_batch_generator(i):
        rows = slice(16 * (i % 4), 16 * (i % 4) + 16)
        return x[rows], y[rows]

    num_iterations = 12
    before = model.evaluate(x, y)[0]
    for i in range(0, num_iterations):
        x_batch, y_batch = some_batch_generator(i)
        model.train_on_batch(x_batch, y_batch)
    assert model.n_updates == num_iterations
    assert model.evaluate(x, y)[0] < before


# -- slide "Model.fit() parameters" ----------------------------------------------------------
def test_fit_takes_every_parameter_of_the_slide():
    model = the_sequential_classifier()
    model.compile(loss='categorical_crossentropy', optimizer='sgd')
    x_train, y_train = labelled(70, 100)
    history = model.fit(x=x_train, y=y_train,
                        batch_size=None,
                        epochs=1,
                        verbose=1,
                        callbacks=None,
                        validation_split=0.0,
                        validation_data=None,
                        shuffle=True,
                        class_weight=None,
                        sample_weight=None,
                        initial_epoch=0,
                        steps_per_epoch=None,
                        validation_steps=None)
    assert len(history.history["loss"]) == 1
    assert model.n_updates == 3                 # batch_size=None is Keras' 32: 32 + 32 + 6
    # Keras' order: fit(x, y, batch_size, epochs), so positional arguments mean what they say
    model.fit(x_train, y_train, 35, 2, 0)
    assert model.n_updates == 3 + 2 * 2
    # initial_epoch resumes Keras' way: epochs is the last epoch's number
    model.fit(x_train, y_train, epochs=5, initial_epoch=3, verbose=0)
    assert model.epochs_done == 1 + 2 + 2
    # class_weight and sample_weight weigh the samples (tests/test_network_sample_weights.py)
    updates = model.n_updates
    model.fit(x_train, y_train, verbose=0, class_weight={0: 2.0})
    model.fit(x_train, y_train, verbose=0, sample_weight=np.ones(70))
    assert model.n_updates == updates + 2 * 3
    for keyword, value in (("steps_per_epoch", 2), ("validation_steps", 1)):
        with pytest.raises(ValueError) as caught:
            model.fit(x_train, y_train, verbose=0, **{keyword: value})
        assert keyword in str(caught.value) and "\n" not in str(caught.value)


# -- slide "Model evaluation" ----------------------------------------------------------------
def test_evaluate_and_predict_with_batch_size_128():
    model = the_sequential_classifier()
    model.compile(loss=dlcore.losses.categorical_crossentropy, optimizer="sgd",
                  metrics=["accuracy"])
    x_test, y_test = labelled(300, 100, seed=1)   # three batches of 128 (the last 44)
    loss_and_metrics = model.evaluate(x_test, y_test,
                                      batch_size=128)
    classes = model.predict(x_test, batch_size=128)
    assert classes.shape == (300, 10)
    # the loss evaluate reports is the mean of the Keras loss function on predict's output
    per_sample = dlcore.losses.categorical_crossentropy(y_test, classes)
    loss, accuracy = loss_and_metrics
    assert loss == pytest.approx(per_sample.mean(), rel=1e-4)
    assert accuracy == pytest.approx(np.mean(classes.argmax(1) == y_test.argmax(1)))


# -- slide "Defining a functional model for NN for classification" ------------------------------
def the_functional_classifier():
    """The slide's code, verbatim (but for the module name)."""
    from dlcore.layers import Dense, Input
    from dlcore.models import Model

    inputs = Input(shape=(100,))
    x = Dense(64, activation='relu')(inputs)
    predictions = Dense(10, activation='softmax')(x)

    model = Model(inputs=inputs, outputs=predictions)
    return model


def test_functional_model_for_classification_trains_and_equals_the_sequential_one():
    model = the_functional_classifier()
    model.compile(optimizer='rmsprop',
                  loss='categorical_crossentropy')
    data, labels = labelled(64, 100)
    before = model.evaluate(data, labels)[0]
    model.fit(data, labels, verbose=0)  # starts training
    assert model.evaluate(data, labels)[0] < before
    assert isinstance(model.optimizer, dlcore.optimizers.RMSProp)
    # the same two layers as the Sequential model of the earlier slide
    sequential = the_sequential_classifier()
    sequential.set_weights(model.get_weights())
    np.testing.assert_allclose(sequential.predict(data), model.predict(data), atol=1e-6)


# -- slide "Most common use cases", "Models with shared layers" (a residual connection) -------
def test_add_a_convolution_to_its_own_input():
    from dlcore.layers import Conv2D, Input

    # input tensor for a 3-channel 256x256 image (NCHW: channels first)
    x = Input(shape=(3, 256, 256))
    # 3x3 conv with 3 output channels (same as input channels)
    y = Conv2D(3, (3, 3), padding='same')(x)
    # this returns x + y
    z = dlcore.layers.add([x, y])

    assert z.shape == x.shape == (3, 256, 256)
    residual, branch = dlcore.Model(x, z), dlcore.Model(x, y)   # the same Conv2D in both
    image = RS.random((1, 3, 256, 256), dtype=np.float32)
    np.testing.assert_allclose(residual.predict(image), image + branch.predict(image),
                               rtol=1e-5, atol=1e-5)


# -- slide "Most common use cases", "Models with multiple input and/or multiple outputs" and
#    "Models with shared layers" (siamese) -----------------------------------------------------
def the_tell_digits_apart_model():
    """The slide's code; NCHW: Input(shape=(1, 27, 27)) for Keras' (27, 27, 1)."""
    from dlcore.layers import Conv2D, Dense, Flatten, Input, MaxPooling2D
    from dlcore.models import Model

    # first, define the vision modules
    digit_input = Input(shape=(1, 27, 27))
    x = Conv2D(64, (3, 3))(digit_input)
    x = Conv2D(64, (3, 3))(x)
    x = MaxPooling2D((2, 2))(x)
    out = Flatten()(x)
    vision_model = Model(digit_input, out)

    # then define the tell-digits-apart model
    digit_a = Input(shape=(1, 27, 27))
    digit_b = Input(shape=(1, 27, 27))

    # the vision model will be shared, weights and all
    out_a = vision_model(digit_a)
    out_b = vision_model(digit_b)
    concatenated = dlcore.layers.concatenate([out_a, out_b])

    out = Dense(1, activation='sigmoid')(concatenated)
    classification_model = Model([digit_a, digit_b], out)
    return vision_model, classification_model


def test_tell_digits_apart_shares_the_vision_model_weights_and_all():
    vision_model, classification_model = the_tell_digits_apart_model()
    # 27 -> 25 -> 23 -> 11 (Keras' pooling drops the last row and column): 64 * 11 * 11
    assert vision_model.output_shape == (64 * 11 * 11,)
    assert vision_model in classification_model.layers   # one layer, as in Keras
    convolutions = [layer for layer in classification_model.flat_layers
                    if isinstance(layer, dlcore.layers.Conv2D)]
    assert convolutions == [layer for layer in vision_model.layers
                            if isinstance(layer, dlcore.layers.Conv2D)]   # the same objects
    assert classification_model.count_params() == (
        vision_model.count_params() + 2 * 64 * 11 * 11 + 1)
    classification_model.compile(loss='binary_crossentropy', optimizer='sgd')
    a = RS.random((6, 1, 27, 27), dtype=np.float32)
    b = np.concatenate([a[:3], RS.random((3, 1, 27, 27), dtype=np.float32)])
    same = np.array([1, 1, 1, 0, 0, 0])
    first = classification_model.train_on_batch([a, b], same)[0]
    for _ in range(4):
        last = classification_model.train_on_batch([a, b], same)[0]
    assert last < first
    # training the classifier trained the shared vision model: it sees the same weights
    for mine, theirs in zip(vision_model.get_weights(), classification_model.get_weights()):
        np.testing.assert_array_equal(mine, theirs)
    features = vision_model.predict(a)
    assert features.shape == (6, 7744)


# -- slide "Saving a model" ------------------------------------------------------------------
@pytest.mark.parametrize("make", [the_functional_classifier, the_sequential_classifier,
                                  lambda: the_tell_digits_apart_model()[1]],
                         ids=["functional", "sequential", "tell-digits-apart"])
def test_to_json_and_to_yaml_give_the_architecture_back(make):
    model = make()
    json_string = model.to_json()
    yaml_string = model.to_yaml()   # JSON is YAML's flow style: the same text
    assert json.loads(yaml_string) == json.loads(json_string)
    again = dlcore.models.model_from_json(yaml_string)
    assert type(again) is type(model)
    assert again.count_params() == model.count_params()
    # every layer that runs (a nested model's too: dlcore's Keras JSON inlines it)
    assert [type(layer) for layer in again.flat_layers] == \
        [type(layer) for layer in model.flat_layers]


# -- slide "Saving and loading model weights" ------------------------------------------------
@pytest.mark.parametrize("make", [the_functional_classifier, the_sequential_classifier,
                                  lambda: the_tell_digits_apart_model()[1]],
                         ids=["functional", "sequential", "tell-digits-apart"])
def test_save_weights_and_load_weights_model_weights_h5(make, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)   # the slide's relative file name
    model, fresh = make(), make()
    model.set_weights([1.5 * w + 0.01 for w in model.get_weights()])   # not fresh's weights
    model.save_weights('model_weights.h5')
    data = (RS.random((3, 100), dtype=np.float32) if model.input_shape == (100,)
            else [RS.random((3, 1, 27, 27), dtype=np.float32)] * 2)
    assert not np.allclose(fresh.predict(data), model.predict(data))   # other initial weights
    fresh.load_weights('model_weights.h5')
    for saved, loaded in zip(model.get_weights(), fresh.get_weights()):
        np.testing.assert_array_equal(saved, loaded)
    np.testing.assert_array_equal(fresh.predict(data), model.predict(data))


def test_the_slides_weights_file_goes_to_keras_3_which_names_its_own_otherwise(
        tmp_path, monkeypatch):
    """Keras 3 (torch backend) as the oracle: it refuses the slide's name for its own
    ``save_weights`` (docs/networks.md says so), reads dlcore's ``model_weights.h5``, and its
    own ``model.weights.h5`` loads into dlcore; the predictions agree within float32
    rounding."""
    from test_io_keras import real_keras
    keras = real_keras()
    monkeypatch.chdir(tmp_path)
    in_keras = keras.Sequential([keras.Input((100,)), keras.layers.Dense(64, activation="relu"),
                                 keras.layers.Dense(10, activation="softmax")])
    with pytest.raises(ValueError, match=r"must end in `?\.weights\.h5"):
        in_keras.save_weights('model_weights.h5')
    data = RS.random((3, 100), dtype=np.float32)
    model = the_sequential_classifier()
    model.save_weights('model_weights.h5')
    in_keras.load_weights('model_weights.h5')
    np.testing.assert_allclose(in_keras.predict(data, verbose=0), model.predict(data),
                               rtol=1e-5, atol=1e-6)
    in_keras.set_weights([1.5 * w + 0.01 for w in in_keras.get_weights()])
    in_keras.save_weights('model.weights.h5')
    model.load_weights('model.weights.h5')
    np.testing.assert_allclose(model.predict(data), in_keras.predict(data, verbose=0),
                               rtol=1e-5, atol=1e-6)

# -- the regularisation slides, written the Keras way ----------------------------------------
def test_xavier_glorot_initialization_is_the_dense_default():
    """Slide "Xavier (or Glorot) initialization": kernel_initializer='glorot_uniform', weights
    uniform in +-sqrt(6 / (fan_in + fan_out))."""
    kernel = the_sequential_classifier().layers[0].get_weights()[0]
    limit = np.sqrt(6 / (100 + 64))
    assert np.abs(kernel).max() <= limit
    assert kernel.std() == pytest.approx(limit / np.sqrt(3), rel=0.05)


def test_dropout_early_stopping_and_augmentation_the_keras_way():
    """Slides "dropout" ("With every forward pass we 'sample' a new network architecture"),
    "Early stopping" ("monitor the loss on a validation set") and "Data augmentation"."""
    from dlcore.callbacks import EarlyStopping
    from dlcore.layers import Conv2D, Dense, Dropout, Flatten, ImageAugmentation
    from dlcore.models import Sequential

    model = Sequential()
    model.add(ImageAugmentation(max_shift=1, horizontal_flip=True, input_shape=(1, 8, 8)))
    model.add(Conv2D(4, (3, 3), activation='relu'))
    model.add(Flatten())
    model.add(Dropout(0.5))
    model.add(Dense(10, activation='softmax'))
    model.compile(loss='categorical_crossentropy', optimizer='adam')
    x, y = labelled(64, 64)
    x = x.reshape(64, 1, 8, 8)
    # validation labels the training data cannot teach: the validation loss soon rises
    x_val, y_val = x[:16], np.roll(y[:16], 3, axis=1)
    stop = EarlyStopping(monitor='val_loss', patience=1, restore_best_weights=True)
    history = model.fit(x, y, epochs=40, batch_size=16, validation_data=(x_val, y_val),
                        callbacks=[stop], verbose=0).history
    assert stop.stopped_epoch is not None and len(history["loss"]) < 40
    # the best epoch's weights are back (restore_best_weights; Keras's default is False)
    best = min(history["val_loss"])
    assert model.evaluate(x_val, y_val)[0] == pytest.approx(best, rel=1e-5)
    # dropout and augmentation act in training only: predict is deterministic, while each
    # training step samples a new network (another mask, another shift)
    np.testing.assert_array_equal(model.predict(x[:4]), model.predict(x[:4]))
    step_1, step_2 = (model.loss_and_gradient(x[:4], y[:4], step=step) for step in (1, 2))
    assert step_1 != step_2
    assert step_1 == model.loss_and_gradient(x[:4], y[:4], step=1)


def test_a_u_net_the_keras_way():
    """Slide "The U-Net architecture": a contracting path, then an expanding path that
    up-samples and concatenates the contracting path's features of the same size; a mask of
    the input's size comes out."""
    from dlcore.layers import (
        Conv2D,
        Conv2DTranspose,
        Input,
        MaxPooling2D,
        UpSampling2D,
        concatenate,
    )
    from dlcore.models import Model

    inputs = Input(shape=(1, 8, 8))
    c1 = Conv2D(4, (3, 3), padding='same', activation='relu')(inputs)
    c2 = Conv2D(8, (3, 3), padding='same', activation='relu')(MaxPooling2D((2, 2))(c1))
    u1 = concatenate([c1, UpSampling2D((2, 2))(c2), Conv2DTranspose(2, 2, strides=2)(c2)])
    masks = Conv2D(1, (1, 1), activation='sigmoid')(u1)
    model = Model(inputs, masks)
    assert u1.shape == (4 + 8 + 2, 8, 8) and model.output_shape == (1, 8, 8)
    model.compile(loss='binary_crossentropy', optimizer='adam')
    x = RS.random((16, 1, 8, 8), dtype=np.float32)
    history = model.fit(x, (x > 0.5).reshape(16, -1), epochs=5, batch_size=8, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]


@pytest.mark.parametrize("input_size, kernel_size, padding, stride",
                         [(28, 5, 2, 1), (32, 5, 0, 1), (7, 3, 1, 2), (227, 11, 0, 4)])
def test_the_output_size_formula_of_the_convolutional_kernels_slide(input_size, kernel_size,
                                                                    padding, stride):
    """Slide "Convolutional kernels": output_size = (input_size - kernel_size +
    2*padding)/stride + 1, the size Conv2D gives."""
    output_size = (input_size - kernel_size +
                   2*padding)/stride + 1  # noqa: E226  (the slide's spelling)
    layer = dlcore.layers.Conv2D(1, kernel_size, stride=stride, padding=padding)
    assert layer.compute_output_shape((1, input_size, input_size))[1:] == (output_size,) * 2


def test_image_layers_take_kerass_data_format_channels_first_and_refuse_channels_last():
    """The lecture's Keras layers written with Keras's data_format="channels_first" (dlcore's
    NCHW) build as without it: only the global pools took the argument, every other image
    layer died with TypeError. Keras's "channels_last" is refused in one line naming the
    transpose that brings NHWC data over."""
    from dlcore.layers import (
        AveragePooling2D,
        AvgPool2D,
        Conv2D,
        Conv2DTranspose,
        Dense,
        Flatten,
        LocallyConnected2D,
        MaxPool2D,
        MaxPooling2D,
        UpSampling2D,
    )
    channels_first = dict(data_format="channels_first")
    model = dlcore.Sequential([
        Conv2D(2, (3, 3), padding="same", **channels_first), MaxPooling2D((2, 2), **channels_first),
        UpSampling2D(**channels_first), Conv2DTranspose(2, 2, **channels_first),
        AvgPool2D(3, **channels_first), LocallyConnected2D(1, 2, **channels_first),
        MaxPool2D(2, floor=True, **channels_first), AveragePooling2D(1, **channels_first),
        Flatten(**channels_first), Dense(2)], input_shape=(1, 8, 8), backend="reference")
    assert model.output_shape == (2,)
    assert [layer.output_shape for layer in model.layers[:4]] == [
        (2, 8, 8), (2, 4, 4), (2, 8, 8), (2, 9, 9)]
    for make in (lambda: Conv2D(2, 3, data_format="channels_last"),
                 lambda: MaxPooling2D(data_format="channels_last"),
                 lambda: Flatten(data_format="channels_last")):
        with pytest.raises(ValueError, match=r"channels first \(N, C, H, W\), so data_format "
                                             r"must be None or 'channels_first', got "
                                             r"'channels_last'; .*x\.transpose\(0, 3, 1, 2\)"):
            make()
