"""The work the benchmarks time, for dlcore and for the libraries it is compared with.

Each function returns :class:`dlcore.bench.Contender` objects (or the
:class:`dlcore.bench.Comparison` that groups them) whose ``work`` is read from the objects they
run, so that :func:`dlcore.bench.check_equal_work` can hold the two sides to the same work:

* **RBM CD-1 epoch** (``dlcore bench rbm``, ``bench dbn``): shuffle the rows, then for every
  mini-batch of B rows the update of lecture "Deep Neural Networks", slide "RBM Weight
  Update" (hidden units sampled; visible units sampled or
  mean-field), with momentum, weight decay and the bias steps: five products of 2 B V H flops.
  dlcore's :class:`~dlcore.BernoulliRBM`, PyTorch written as an expert would (preallocated
  buffers, in-place ``addmm_``, ``sigmoid_``, ``bernoulli_``) and as a student would (new
  tensors every step), dlcore's NumPy reference; scikit-learn's ``BernoulliRBM`` (PCD-1, no
  momentum, no decay) in a comparison of its own against dlcore doing that same update.
* **Network training epoch and inference** (``bench mlp``, ``bench cnn``): SGD with momentum on
  mini-batches drawn in a new order every epoch, softmax cross-entropy; then class
  probabilities in evaluation mode. The network's layers, as :func:`describe_network` and
  :func:`describe_torch_network` read them from the two models, are part of the work.
"""
import numpy as np

from dlcore import bench
from dlcore.bench import Comparison, Contender
from dlcore.bench_process import shared_process

RBM_LEARNING_RATE, RBM_MOMENTUM, RBM_WEIGHT_DECAY = 0.1, 0.5, 2e-4


def warm_up_rows(n_rows, batch_size):
    """How many rows a warm-up pass takes: a twentieth of the data, at least one batch."""
    return max(batch_size, n_rows // 20)


# -- RBM -----------------------------------------------------------------------------------
def rbm_work(n_rows, n_visible, n_hidden, batch_size, sample_visible, learning_rate, momentum,
             weight_decay, update="CD-1"):
    """The work of one RBM epoch, as every RBM contender states it."""
    return {"update": update, "rows": int(n_rows), "visible": int(n_visible),
            "hidden": int(n_hidden), "batch_size": int(batch_size), "sample_hidden": True,
            "sample_visible": bool(sample_visible), "learning_rate": float(learning_rate),
            "momentum": float(momentum), "weight_decay": float(weight_decay)}


def rbm_epoch_flops(n_rows, n_visible, n_hidden):
    """Flops of the five products of one CD-1 epoch: 2 n V H each."""
    return 5 * 2 * n_rows * n_visible * n_hidden


def dlcore_rbm_contender(X, n_hidden, batch_size, backend, sample_visible=True,
                         persistent=False, momentum=RBM_MOMENTUM, weight_decay=RBM_WEIGHT_DECAY,
                         repeats=None):
    """dlcore's :class:`~dlcore.BernoulliRBM`, one ``partial_fit`` epoch per run."""
    import dlcore
    from dlcore.backend import get_backend
    rbm = dlcore.BernoulliRBM(n_hidden=n_hidden, batch_size=batch_size, epochs=0,
                              learning_rate=RBM_LEARNING_RATE, momentum=momentum,
                              weight_decay=weight_decay, sample_visible=sample_visible,
                              persistent=persistent, seed=0, backend=backend)
    rbm.initialize(X)
    runs_on = get_backend(backend)
    name = f"dlcore {runs_on.name}" if runs_on.launches_kernels else "NumPy (dlcore reference)"
    if persistent:
        name += " PCD-1"
    params = rbm.get_params()
    work = rbm_work(len(X), rbm.W.shape[0], rbm.W.shape[1], params["batch_size"],
                    params["sample_visible"], params["learning_rate"], params["momentum"],
                    params["weight_decay"],
                    update=f"{'PCD' if params['persistent'] else 'CD'}-{params['cd_k']}")
    warm = X[:warm_up_rows(len(X), batch_size)]
    return Contender(name, lambda: rbm.partial_fit(X), work,
                     warm_up=lambda: rbm.partial_fit(warm), repeats=repeats)


def from_the_host(array, device):
    """The NumPy ``array`` as a tensor on ``device``, copied there inside a timed run: dlcore's
    ``fit``, ``partial_fit`` and ``predict`` take NumPy arrays and copy them to the GPU in every
    run, so PyTorch's side starts each run from the host's arrays too (equal work; on the CPU
    the tensor is a view, no copy)."""
    import torch
    return torch.from_numpy(np.ascontiguousarray(array)).to(device)


def torch_device(wanted):
    """The PyTorch device a contender runs on: ``wanted`` ("cuda" where dlcore's backend is
    on a GPU, :func:`dlcore.bench.on_a_gpu`), or "cpu" where this PyTorch has no CUDA (a
    CPU-only build beside a GPU; the contender's name says "cpu")."""
    import torch
    return wanted if wanted == "cpu" or torch.cuda.is_available() else "cpu"


def torch_rbm_contenders(X, n_hidden, batch_size, device, threads, sample_visible=True,
                         from_host=True):
    """PyTorch's CD-1 epoch written as an expert would (``in-place``: preallocated buffers,
    ``addmm_``, ``sigmoid_``, ``bernoulli_``) and as a student would (``plain``: new tensors
    every step), both with the settings of :func:`rbm_work`, on :func:`torch_device`; each run
    starts from the NumPy ``X`` (:func:`from_the_host`), as dlcore's ``partial_fit(X)`` does,
    or, ``from_host`` False, from ``X`` put on the device once (a DBN's upper layer, whose
    data dlcore's DBN propagates on its device)."""
    import torch
    torch.set_num_threads(threads)
    device = torch_device(device)
    X = np.ascontiguousarray(X, dtype=np.float32)
    n_visible = X.shape[1]
    generator = torch.Generator(device=device).manual_seed(0)
    lr, m, wd = RBM_LEARNING_RATE, RBM_MOMENTUM, RBM_WEIGHT_DECAY

    def parameters():
        W = torch.randn(n_visible, n_hidden, generator=generator, device=device) * 0.01
        return [W, torch.zeros(n_visible, device=device), torch.zeros(n_hidden, device=device),
                torch.zeros_like(W), torch.zeros(n_visible, device=device),
                torch.zeros(n_hidden, device=device)]

    plain_state = parameters()

    def plain_epoch(rows):
        W, b, c, vW, vb, vc = plain_state
        order = torch.randperm(len(rows), generator=generator, device=device)
        for start in range(0, len(rows), batch_size):
            v0 = rows[order[start:start + batch_size]]
            h0 = torch.bernoulli(torch.sigmoid(v0 @ W + c), generator=generator)
            v1 = torch.sigmoid(h0 @ W.T + b)
            if sample_visible:
                v1 = torch.bernoulli(v1, generator=generator)
            q1 = torch.sigmoid(v1 @ W + c)
            vW = m * vW + lr * ((v0.T @ h0 - v1.T @ q1) / len(v0) - wd * W)
            vb = m * vb + lr * (v0 - v1).mean(0)
            vc = m * vc + lr * (h0 - q1).mean(0)
            W, b, c = W + vW, b + vb, c + vc
        plain_state[:] = [W, b, c, vW, vb, vc]

    W, b, c, vW, vb, vc = parameters()
    v0 = torch.empty(batch_size, n_visible, device=device)
    h0, q1 = (torch.empty(batch_size, n_hidden, device=device) for _ in range(2))
    v1 = torch.empty(batch_size, n_visible, device=device)

    def in_place_epoch(rows):
        order = torch.randperm(len(rows), generator=generator, device=device)
        for start in range(0, len(rows), batch_size):
            index = order[start:start + batch_size]
            x, h, v, q = v0[:len(index)], h0[:len(index)], v1[:len(index)], q1[:len(index)]
            torch.index_select(rows, 0, index, out=x)
            torch.addmm(c, x, W, out=h).sigmoid_().bernoulli_(generator=generator)
            torch.addmm(b, h, W.T, out=v).sigmoid_()
            if sample_visible:
                v.bernoulli_(generator=generator)
            torch.addmm(c, v, W, out=q).sigmoid_()
            scale = lr / len(index)
            vW.mul_(m).addmm_(x.T, h, alpha=scale).addmm_(v.T, q, alpha=-scale)
            vW.add_(W, alpha=-lr * wd)
            W.add_(vW)
            vb.mul_(m).add_((x - v).mean(0), alpha=lr)
            vc.mul_(m).add_((h - q).mean(0), alpha=lr)
            b.add_(vb)
            c.add_(vc)

    resident = None if from_host else from_the_host(X, device)

    def synchronised(epoch, rows):
        def run():
            epoch(from_the_host(rows, device) if resident is None else resident[:len(rows)])
            if device != "cpu":
                torch.cuda.synchronize()
        return run

    work = rbm_work(len(X), n_visible, W.shape[1], batch_size, sample_visible, lr, m, wd)
    warm = X[:warm_up_rows(len(X), batch_size)]
    return [Contender(f"PyTorch {device} in-place (addmm_)", synchronised(in_place_epoch, X),
                      work, warm_up=synchronised(in_place_epoch, warm)),
            Contender(f"PyTorch {device} plain", synchronised(plain_epoch, X), dict(work),
                      warm_up=synchronised(plain_epoch, warm))]


def sklearn_rbm_contender(X, n_hidden, batch_size, repeats=None):
    """scikit-learn's ``BernoulliRBM``, a fresh model's one ``partial_fit`` pass per run: PCD-1
    (a persistent chain), visible units sampled, no momentum, no weight decay."""
    from sklearn.neural_network import BernoulliRBM
    model = BernoulliRBM(n_components=n_hidden, learning_rate=RBM_LEARNING_RATE,
                         batch_size=batch_size, n_iter=1, random_state=0)
    params = model.get_params()
    work = rbm_work(len(X), X.shape[1], params["n_components"], params["batch_size"], True,
                    params["learning_rate"], 0.0, 0.0, update="PCD-1")

    def run(data):
        BernoulliRBM(**params).fit(data)
    warm = X[:warm_up_rows(len(X), batch_size)]
    return Contender("scikit-learn BernoulliRBM (float32)", lambda: run(X), work,
                     warm_up=lambda: run(warm), repeats=repeats)


def rbm_comparisons(X, n_hidden=500, batch_size=100, backend="cpu",
                    include=("dlcore", "reference", "sklearn", "torch"), slow_repeats=1,
                    threads=None):
    """The comparisons of ``dlcore bench rbm`` on the rows ``X`` (n, V) float32:

    1. CD-1 epoch, visible units mean-field: dlcore, PyTorch in-place and plain;
    2. CD-1 epoch, visible units sampled (dlcore's default): the same, and dlcore's NumPy
       reference (``slow_repeats`` runs);
    3. PCD-1 epoch without momentum or decay: dlcore and scikit-learn (``slow_repeats`` runs).

    A contender missing from ``include``, not importable, or that does not race on the backend
    (:func:`dlcore.bench.races_on`) is left out.
    """
    import numba
    threads = threads or numba.get_num_threads()
    flops = rbm_epoch_flops(*X.shape, n_hidden)
    torch_here = "torch" in include and bench.importable("torch")
    device = "cuda" if bench.on_a_gpu(backend) else "cpu"
    comparisons = []
    for sample_visible in (False, True):
        contenders = [dlcore_rbm_contender(X, n_hidden, batch_size, backend, sample_visible)]
        if torch_here:   # in PyTorch's own process (dlcore.bench_process)
            contenders += shared_process("torch").contenders(
                "dlcore.bench_workloads:torch_rbm_contenders", X, n_hidden, batch_size, device,
                threads, sample_visible)
        if sample_visible and "reference" in include and bench.races_on("reference", backend):
            contenders.append(dlcore_rbm_contender(X, n_hidden, batch_size, "reference", True,
                                                   repeats=slow_repeats))
        task = ("CD-1 epoch, visible units sampled (dlcore's default)" if sample_visible
                else "CD-1 epoch, visible units mean-field")
        note = f"hidden units sampled; momentum {RBM_MOMENTUM}, weight decay {RBM_WEIGHT_DECAY}"
        if backend == "cpu":   # GFLOP/s above SGEMM's rate, unexplained, would look like a bug
            note += "; GFLOP/s count the products as multiplied, which dlcore sums from samples"
        comparisons.append(Comparison(task, contenders, flops, note=note))
    if "sklearn" in include and bench.races_on("sklearn", backend) and bench.importable("sklearn"):
        contenders = [dlcore_rbm_contender(X, n_hidden, batch_size, backend, True,
                                           persistent=True, momentum=0.0, weight_decay=0.0,
                                           repeats=slow_repeats),
                      sklearn_rbm_contender(X, n_hidden, batch_size, repeats=slow_repeats)]
        comparisons.append(Comparison(
            "PCD-1 epoch, scikit-learn's update", contenders, flops,
            note="visible units sampled, no momentum, no weight decay; dlcore also computes "
                 "its reconstruction monitor (one more product)"))
    return comparisons


# -- networks ------------------------------------------------------------------------------
def describe_network(model):
    """The layers of a dlcore network as a list of JSON-able steps, in the form
    :func:`describe_torch_network` gives PyTorch's: ``["conv2d", [out, in, kh, kw], stride,
    padding]``, ``["dense", in, out]``, an activation name, ``["max_pool", size, stride]``,
    ``["dropout", rate]``; a final softmax is part of the loss (``softmax_cross_entropy``)."""
    steps = []
    for layer in model.layers:
        kind = type(layer).__name__
        config = layer.get_config()
        if kind == "Conv2D":
            steps.append(["conv2d", list(layer.params["kernel"].shape),
                          list(config["stride"]), _sides(layer._padding)])
        elif kind == "Dense":
            steps.append(["dense", *layer.params["kernel"].shape])
        elif kind in ("MaxPool2D", "AvgPool2D"):
            steps.append([{"MaxPool2D": "max_pool", "AvgPool2D": "avg_pool"}[kind],
                          list(config["pool_size"]), list(config["stride"])])
        elif kind == "Dropout":
            if config["rate"]:
                steps.append(["dropout", float(config["rate"])])
        elif kind != "Flatten":
            steps.append(["layer", kind])
        activation = config.get("activation", "linear")
        if kind in ("ReLU", "Sigmoid", "Tanh", "Softmax", "Activation"):
            steps[-1] = activation
        elif activation != "linear":
            steps.append(activation)
    loss = getattr(getattr(model, "loss", None), "name", None)
    if steps and steps[-1] == "softmax" and loss == "cross_entropy":
        steps[-1] = "softmax_cross_entropy"
    return steps


def _sides(padding):
    """A padding per axis, an int (both sides) or a (before, after) pair, as [[before, after],
    ...]."""
    return [[int(p), int(p)] if isinstance(p, (int, np.integer)) else [int(q) for q in p]
            for p in padding]


def describe_torch_network(module, loss=None):
    """:func:`describe_network`'s steps for a PyTorch ``nn.Sequential`` (and its ``loss``
    module: ``CrossEntropyLoss`` is a softmax and the cross-entropy)."""
    steps = []
    for layer in module:
        kind = type(layer).__name__
        if kind == "Conv2d":
            steps.append(["conv2d", list(layer.weight.shape), list(layer.stride),
                          _sides(layer.padding)])
        elif kind == "Linear":
            steps.append(["dense", layer.in_features, layer.out_features])
        elif kind in ("MaxPool2d", "AvgPool2d"):
            size = layer.kernel_size if isinstance(layer.kernel_size, tuple) else (
                layer.kernel_size,) * 2
            stride = layer.stride if isinstance(layer.stride, tuple) else (layer.stride,) * 2
            steps.append([{"MaxPool2d": "max_pool", "AvgPool2d": "avg_pool"}[kind], list(size),
                          list(stride)])
        elif kind == "Dropout":
            if layer.p:
                steps.append(["dropout", float(layer.p)])
        elif kind in ("ReLU", "Sigmoid", "Tanh"):
            steps.append(kind.lower())
        elif kind != "Flatten":
            steps.append(["layer", kind])
    if type(loss).__name__ == "CrossEntropyLoss":
        steps.append("softmax_cross_entropy")
    return steps


def network_training_work(layers, n_rows, batch_size, learning_rate, momentum, nesterov):
    return {"task": "training epoch", "layers": layers, "rows": int(n_rows),
            "batch_size": int(batch_size), "shuffle": True,
            "optimizer": ["sgd", float(learning_rate), float(momentum), bool(nesterov)]}


def network_inference_work(layers, n_rows, batch_size):
    return {"task": "inference", "layers": [step for step in layers
                                            if not (isinstance(step, list)
                                                    and step[0] == "dropout")],
            "rows": int(n_rows), "batch_size": int(batch_size),
            "output": "softmax probabilities"}


def dlcore_network_contenders(model, x, y, x_test, batch_size):
    """A compiled dlcore network (SGD): (training epoch, inference) contenders, warmed up on
    ten batches."""
    optimizer = model.optimizer
    layers = describe_network(model)
    train_work = network_training_work(layers, len(x), batch_size,
                                       float(optimizer.learning_rate), optimizer.momentum,
                                       optimizer.nesterov)
    warm = slice(0, min(len(x), 10 * batch_size))

    def train():
        model.fit(x, y, epochs=1, batch_size=batch_size, verbose=0)

    def warm_up():
        model.fit(x[warm], y[warm], epochs=1, batch_size=batch_size, verbose=0)

    def infer():
        model.predict(x_test, batch_size=batch_size)
    name = f"dlcore {model.backend.name}"
    return (Contender(name, train, train_work, warm_up=warm_up),
            Contender(name, infer, network_inference_work(layers, len(x_test), batch_size),
                      warm_up=infer))


def torch_network_contenders(module, x, y, x_test, batch_size, learning_rate, momentum,
                             threads, device="cpu"):
    """The same for a PyTorch ``nn.Sequential`` ending in logits: SGD with momentum and
    ``CrossEntropyLoss`` in training mode; ``softmax`` in evaluation mode (``no_grad``); on
    :func:`torch_device` (``device``). Each run starts from the NumPy arrays and inference
    ends with the probabilities back on the host, as dlcore's ``fit`` and ``predict`` do
    (:func:`from_the_host`)."""
    import torch
    torch.set_num_threads(threads)
    device = torch_device(device)
    module = module.to(device)
    loss_function = torch.nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(module.parameters(), lr=learning_rate, momentum=momentum)
    labels_on_the_host = np.ascontiguousarray(y, dtype=np.int64)
    layers = describe_torch_network(module, loss_function)
    settings = optimizer.param_groups[0]

    def finished():   # a GPU's launches return before their work is done
        if device != "cpu":
            torch.cuda.synchronize()

    def train(n=None):
        n = len(x) if n is None else n
        images = from_the_host(x[:n], device)
        labels = from_the_host(labels_on_the_host[:n], device)
        module.train()
        order = torch.randperm(n, device=device)
        for start in range(0, n, batch_size):
            rows = order[start:start + batch_size]
            optimizer.zero_grad()
            loss_function(module(images[rows]), labels[rows]).backward()
            optimizer.step()
        finished()

    def infer():
        test = from_the_host(x_test, device)
        module.eval()
        with torch.no_grad():
            probabilities = torch.cat([torch.softmax(module(test[start:start + batch_size]),
                                                     dim=1)
                                       for start in range(0, len(test), batch_size)])
        probabilities.cpu()
        finished()

    name = f"PyTorch {torch.__version__.split('+')[0]} {device}"
    train_work = network_training_work(layers, len(x), batch_size, settings["lr"],
                                       settings["momentum"], settings["nesterov"])
    return (Contender(name, train, train_work,
                      warm_up=lambda: train(min(len(x), 10 * batch_size))),
            Contender(name, infer, network_inference_work(layers, len(x_test), batch_size),
                      warm_up=infer))


def network_comparisons(dlcore_model, torch_network, x, y, x_test, batch_size, threads):
    """The training-epoch and inference comparisons of a compiled dlcore network and, when
    ``torch_network`` is not None, the same network in PyTorch (with dlcore's SGD settings),
    built and run in PyTorch's own process (:mod:`dlcore.bench_process`). ``torch_network``:
    ``(builder, arguments)``, the name of a function here that builds the module
    (:func:`torch_lenet5`, :func:`torch_mlp`) and its arguments. PyTorch runs on its CUDA
    device where dlcore's backend is on a GPU, as ``dlcore bench rbm`` races it."""
    train, infer = dlcore_network_contenders(dlcore_model, x, y, x_test, batch_size)
    trains, infers = [train], [infer]
    if torch_network is not None:
        optimizer = dlcore_model.optimizer
        device = "cuda" if bench.on_a_gpu(dlcore_model.backend) else "cpu"
        torch_train, torch_infer = shared_process("torch").contenders(
            "dlcore.bench_workloads:built_torch_network_contenders", *torch_network, x, y,
            x_test, batch_size, float(optimizer.learning_rate), optimizer.momentum, threads,
            device)
        trains.append(torch_train)
        infers.append(torch_infer)
    return [Comparison(f"training epoch, {len(x):,} images, batch {batch_size}", trains),
            Comparison(f"inference, {len(x_test):,} images", infers)]


def built_torch_network_contenders(builder, arguments, *args):
    """:func:`torch_network_contenders` of the module ``builder(*arguments)`` (a function of
    this module, named), for PyTorch's own process."""
    return torch_network_contenders(globals()[builder](*arguments), *args)


def torch_lenet5():
    """LeNet-5 in PyTorch as :func:`dlcore.models.lenet5` builds it (ReLU, max pooling; the
    softmax is in the loss)."""
    import torch
    nn = torch.nn
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
                         nn.Linear(84, 10))


def torch_mlp(n_inputs, hidden, n_classes, dropout):
    """The fine-tuning net of a DBN (:meth:`dlcore.DBN.to_network`): ``Linear`` + ``Sigmoid``
    (+ ``Dropout``) per hidden layer, then the class logits."""
    import torch
    nn = torch.nn
    torch.manual_seed(0)
    layers, width = [], n_inputs
    for units in hidden:
        layers += [nn.Linear(width, units), nn.Sigmoid()]
        if dropout:
            layers.append(nn.Dropout(dropout))
        width = units
    layers.append(nn.Linear(width, n_classes))
    return nn.Sequential(*layers)
