"""What the ranks of one fit must agree on before the first step, and how it is compared.

Every rank of a data-parallel fit (:mod:`.rbm`, :mod:`.autoencoder`, :mod:`.network`,
:mod:`.updown`) must start from the same data and the same model, or they train on different
things while their sums look fine. Each rank reduces what it holds to a fingerprint (shapes and
CRC-32 of the bytes: cheap, no data sent) and :meth:`dlcore.distributed.Communicator.check_same`
compares it with rank 0's, naming what differs in one line.
"""
import zlib

import numpy as np

from dlcore.lazy_rows import LazyRows


def model_fingerprint(parameters, epochs):
    """What the ranks' starting models must agree on besides the settings: each parameter's
    name, shape and CRC-32 (another seed, size or starting point differs there), and the
    number of ``epochs`` (a rank that stops first leaves the others waiting)."""
    return {"epochs": int(epochs),
            **{f"parameter {name}": data_fingerprint(np.asarray(value))
               for name, value in parameters.items()}}


def check_same_model(comm, model):
    """ValueError on the ranks whose ``model`` (:func:`model_fingerprint`) or ``sync_every``
    (a rank averaging every K epochs runs other collectives than one summing every batch) is
    not rank 0's (``model`` None: sync_every alone). Every rank of a fit must call it alike
    (it is a collective)."""
    comm.check_same("the starting model (the seed, sizes and weights, as the shapes and "
                    "CRC-32 of its parameters), the epochs or sync_every",
                    {**(model or {}), "sync_every": getattr(comm, "sync_every", 1)})


def data_fingerprint(X):
    """(shape, CRC-32 of the bytes) of a NumPy array: cheap, and enough to catch ranks that
    loaded different files or shuffled differently. Lazy rows give their own fingerprint
    without reading the file (:meth:`dlcore.lazy_rows.LazyRows.fingerprint`)."""
    if isinstance(X, LazyRows):
        return X.fingerprint()
    X = np.ascontiguousarray(X)
    return X.shape, zlib.crc32(X.view(np.uint8).reshape(-1))
