"""The summary table of a network: per layer the output shape, the parameters and the forward
FLOPs per sample, then the totals (Keras' ``model.summary()``).

Lecture "Supervised learning" (CVPR 2014 tutorial), "What if it does not work?": "Compute flops
and nr. params." -- too small a network underfits, too large a one is slow. A multiply-add counts
2 FLOPs (a Dense layer costs 2 * in * out per sample, a Conv2D 2 * C k_h k_w * F * H' W');
element-wise layers count 0.
"""

import sys

__all__ = ["LayerSummary", "Summary", "summarize"]


class LayerSummary:
    """One row of the table: a layer's name, class, output shape and counts."""

    def __init__(self, name, class_name, output_shape, weights, biases, flops, trainable=True,
                 state=0):
        self.name, self.class_name, self.output_shape = name, class_name, tuple(output_shape)
        self.weights, self.biases, self.flops = weights, biases, flops
        #: whether training updates the layer's parameters (False: frozen)
        self.trainable = trainable
        #: numbers kept that are not parameters (a BatchNormalization's moving statistics)
        self.state = state
        #: the names of the tensors the layer is called on (a functional model's graph)
        self.inputs = None
        #: parameters of a trainable row that do not train (a nested model's frozen layers)
        self.frozen = 0

    @property
    def params(self):
        return self.weights + self.biases + self.state


class Summary:
    """The numbers of a network's summary (``rows``, ``total_params``, ``total_weights``,
    ``total_biases``, ``total_flops``, and as Keras ``trainable_params`` and
    ``non_trainable_params``, those of frozen layers); ``table`` is the table's text.

    ``str()`` is the table, but once :meth:`show` (``model.summary()``) has printed it, the
    one line of ``repr()``: ``print(model.summary())`` printed the table twice, where Keras's
    ``summary()`` prints it and returns None (``print`` then adds "None"). The table's text
    stays ``table``, and ``summary(print_fn=None)`` prints nothing and returns the table as
    ``str()``.
    """

    def __init__(self, rows, name, input_shape, inputs=None):
        self.rows, self.name, self.input_shape = rows, name, tuple(input_shape)
        #: whether :meth:`show` printed the table (``str()`` is then the repr's line)
        self.printed = False
        #: (name, per-sample shape) of each input: a row each at the top of the table
        self.inputs = list(inputs) if inputs else [("input", self.input_shape)]
        self.total_weights = sum(r.weights for r in rows)
        self.total_biases = sum(r.biases for r in rows)
        self.total_state = sum(r.state for r in rows)
        self.total_params = self.total_weights + self.total_biases + self.total_state
        self.non_trainable_params = sum(r.params if not r.trainable else r.state + r.frozen
                                        for r in rows)
        self.trainable_params = self.total_params - self.non_trainable_params
        self.total_flops = sum(r.flops for r in rows)

    def __str__(self):
        return repr(self) if self.printed else self.table

    @property
    def table(self):
        """The table's text: a title, a row per input and per layer, then the totals."""
        header = ("Layer (type)", "Output shape", "Params", "Weights", "Biases", "FLOPs")
        table = [header] + [(name, _shape_text(shape), "", "", "", "")
                            for name, shape in self.inputs]
        first_layer = len(table)
        table += [(f"{r.name} ({r.class_name}{'' if r.trainable or not r.params else ', frozen'})",
                   _shape_text(r.output_shape), f"{r.params:,}",
                   f"{r.weights:,}", f"{r.biases:,}", f"{r.flops:,}") for r in self.rows]
        if any(r.inputs for r in self.rows):   # a graph: each row says what it takes
            header += ("Inputs",)
            table[0] = header
            for index in range(1, first_layer):
                table[index] += ("",)
            for index, r in enumerate(self.rows, start=first_layer):
                table[index] += (", ".join(r.inputs or ()),)
        widths = [max(len(row[i]) for row in table) for i in range(len(header))]

        def line(row):
            return "  ".join([row[0].ljust(widths[0]), row[1].ljust(widths[1])]
                             + [cell.rjust(width) for cell, width in zip(row[2:6], widths[2:6])]
                             + [cell.ljust(width) for cell, width in zip(row[6:], widths[6:])]
                             ).rstrip()

        rule = "-" * len(line(header))
        lines = [f'Network "{self.name}"', rule, line(header), rule]
        lines += [line(row) for row in table[1:]]
        lines += [rule,
                  f"Total parameters: {self.total_params:,} (weights {self.total_weights:,}, "
                  f"biases {self.total_biases:,}"
                  + (f", moving statistics {self.total_state:,})" if self.total_state else ")"),
                  f"Trainable parameters: {self.trainable_params:,}; non-trainable: "
                  f"{self.non_trainable_params:,}",
                  f"Forward FLOPs per sample: {self.total_flops:,} "
                  "(a multiply-add counts 2; element-wise layers 0)"]
        return "\n".join(lines)

    def show(self, print_fn=print):
        """Print the table with ``print_fn`` (None prints nothing), as ``model.summary()``
        does; IPython's display of this object in the same cell then shows nothing more, and
        ``print`` of it the one line of its repr (the class docstring)."""
        if print_fn is not None:
            print_fn(self.table)
            self.printed = True
            self._shown_in_cell = _ipython_cell()

    def _ipython_display_(self):
        """What IPython (a notebook) shows of ``model.summary()`` as a cell's last line:
        nothing in the cell that printed the table (Keras's summary() returns None, which
        shows nothing), else the table; a bare Summary(...) line followed the table."""
        cell = getattr(self, "_shown_in_cell", None)
        if cell is not None and cell == _ipython_cell():
            return
        from IPython.display import display
        display({"text/plain": self.table}, raw=True)

    def __repr__(self):
        return (f"Summary(total_params={self.total_params}, total_weights={self.total_weights}"
                f", total_flops={self.total_flops})")


def _ipython_cell():
    """The number of the IPython cell running now (its execution count); None outside
    IPython."""
    ipython = sys.modules.get("IPython")
    get_ipython = getattr(ipython, "get_ipython", None)
    shell = get_ipython() if get_ipython is not None else None
    return getattr(shell, "execution_count", None)


def summarize(name, input_shape, layers, trains=None):
    """The :class:`Summary` of built ``layers`` (in order) fed per-sample inputs of
    ``input_shape``; ``trains(layer)`` says whether training updates a layer (default: its
    ``trainable``)."""
    trains = trains or (lambda layer: layer.trainable)
    return Summary([LayerSummary(layer.name, type(layer).__name__, layer.output_shape,
                                 layer.weight_count(), layer.bias_count(), layer.flops(),
                                 bool(trains(layer)), layer.state_count())
                    for layer in layers], name, input_shape)


def _shape_text(shape):
    """``(None, 2)``; a list of them for a row of several outputs (a nested model's, as
    Keras's summary shows them)."""
    if shape and all(isinstance(part, tuple) for part in shape):
        return "[" + ", ".join(_shape_text(part) for part in shape) + "]"
    return "(None, " + ", ".join(str(v) for v in shape) + ")"
