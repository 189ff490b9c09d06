"""What the greedy stacks share: a DBN's RBMs and a stacked autoencoder's layers.

Lecture "Deep Neural Networks" trains a deep model one layer at a time, each layer on the
codes of the layers below. :class:`dlcore.DBN` (RBMs) and :class:`dlcore.StackedAutoencoder`
(autoencoders) keep their layers, bottom first, in a list of estimators; this mixin holds what
they do alike with that list: whether a layer has finished its epochs, the stack's history
(layer k's figures under ``<prefix><k>_<name>``, so that one file holds them all), and the check
that refuses to use a stack whose training an interruption stopped.
"""
from dlcore.errors import NotFittedError


class LayerStack:
    """Mixin; a class sets where its layers live and how its messages name them."""

    #: attribute holding the layer estimators, bottom first
    layers_attribute = "layers_"
    #: history keys of layer k (1 = the bottom one): f"{history_prefix}{k}_{name}"
    history_prefix = "layer"
    #: the word for one layer in messages
    layer_noun = "layer"
    #: how to finish an interrupted training, for the message that asks for it
    resume_hint = "resume(X)"

    def _layer_trained(self, index):
        layer = getattr(self, self.layers_attribute)[index]
        return hasattr(layer, "W") and layer.epochs_done_ >= int(layer.epochs)

    def _record_layer(self, index, layer):
        for name, values in layer.history.items():
            self.history[f"{self.history_prefix}{index + 1}_{name}"] = list(values)

    def _restore_layer_history(self, index, layer):
        """A loaded layer's history is in the stack's: give it back to the layer."""
        prefix = f"{self.history_prefix}{index + 1}_"
        layer.history = {name[len(prefix):]: list(values)
                         for name, values in self.history.items()
                         if name.startswith(prefix)} or layer.history

    def _check_fitted(self):
        name = type(self).__name__
        if not hasattr(self, self.layers_attribute):
            raise NotFittedError(f"this {name} is not fitted yet: call fit(X) first, or "
                                 "dlcore.load() a saved one")
        layers = getattr(self, self.layers_attribute)
        unfinished = [index for index in range(len(layers)) if not self._layer_trained(index)]
        if unfinished:
            raise RuntimeError(f"this {name}'s training was interrupted in {self.layer_noun} "
                               f"{unfinished[0] + 1} of {len(layers)}: finish it with "
                               f"{self.resume_hint}")
