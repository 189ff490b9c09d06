"""The scikit-learn estimator contract, without depending on scikit-learn.

``get_params``/``set_params`` read the constructor's signature (as ``sklearn.base.BaseEstimator``
does), so an estimator works with ``sklearn.base.clone``, ``Pipeline`` and grid search.
"""
import inspect


class ParamsMixin:
    """get_params / set_params / repr from the names of ``__init__``'s arguments."""

    @classmethod
    def _param_names(cls):
        signature = inspect.signature(cls.__init__)
        return [name for name, parameter in signature.parameters.items()
                if name != "self" and parameter.kind == parameter.POSITIONAL_OR_KEYWORD]

    def _init_params(self, arguments):
        """Store every constructor argument under its own name, unchanged (scikit-learn's rule:
        checks happen in ``_check_params`` and ``fit``); ``arguments`` is ``locals()``."""
        for name in self._param_names():
            setattr(self, name, arguments[name])

    def get_params(self, deep=True):
        """The constructor arguments as a dict (``deep`` is accepted for scikit-learn)."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params):
        """Set constructor arguments by name; returns self. Unknown names are an error."""
        valid = self._param_names()
        for name, value in params.items():
            if name not in valid:
                raise ValueError(f"invalid parameter {name!r} for {type(self).__name__}; "
                                 f"valid parameters: {', '.join(valid)}")
            setattr(self, name, value)
        return self

    def __repr__(self):
        signature = inspect.signature(type(self).__init__)
        changed = [f"{name}={getattr(self, name)!r}" for name in self._param_names()
                   if getattr(self, name) != signature.parameters[name].default]
        return f"{type(self).__name__}({', '.join(changed)})"

    def __sklearn_tags__(self):
        """Tags for scikit-learn >= 1.6, which asks every estimator in a Pipeline for them."""
        from sklearn.utils import InputTags, Tags, TargetTags, TransformerTags
        return Tags(estimator_type=None, target_tags=TargetTags(required=False),
                    transformer_tags=TransformerTags(), input_tags=InputTags())
