"""Run under ``mpiexec -n R`` by tests/test_distributed.py: ``python distributed_worker.py CASE
[CASE ...]``. A training case trains one small model data-parallel, then (rank 0) the same
model in one process (or reads that training from $DLCORE_TEST_ONE_PROCESS, where
``python distributed_worker.py --one-process CASE ...`` left it), and prints one JSON line with
the largest difference of every parameter; the other cases exercise the communicator (sums, a
rank that hangs, a rank that fails)."""
import functools
import json
import math
import os
import sys
import zlib
from pathlib import Path

import numpy as np

import dlcore
import dlcore.distributed

#: A wait longer than any test lets a job take (test_distributed.JOB_HANG_SECONDS): a rank's
#: sleep that only the product's stopping ends, a timeout that must never be what ends a job.
NEVER_SECONDS = 900


def binary_data(n_rows, n_columns, seed=3):
    generator = np.random.default_rng(seed)
    prototypes = generator.random((3, n_columns)) < 0.5
    rows = prototypes[generator.integers(0, 3, n_rows)]
    flips = generator.random((n_rows, n_columns)) < 0.1
    return (rows ^ flips).astype(np.float32)


def rbm_case(case):
    X = binary_data(23, 12)
    options = dict(n_hidden=5, epochs=3, batch_size=7, learning_rate=0.1, momentum=0.5,
                   weight_decay=1e-3, seed=4, backend="cpu")
    if case == "rbm-pcd":
        options.update(persistent=True, sparsity_target=0.2, sparsity_cost=0.1)
    if case == "rbm-pcd-last-batch":   # 410 = 20 * 20 + 10 digits: a last batch of 10 rows
        X = dlcore.datasets.to_unit_interval(dlcore.datasets.load_mnist_5k()[0][:410])
        options.update(n_hidden=20, batch_size=20, epochs=2, persistent=True)
    if case == "rbm-learn":   # a rate at which 10 epochs visibly lower the error
        options.update(learning_rate=0.5, epochs=10)
    if case == "rbm-cd2-mean-field":
        options.update(cd_k=2, sample_visible=False, backend="reference")
    if case == "gaussian":
        X = np.random.default_rng(5).normal(size=(23, 12)).astype(np.float32)
        return dlcore.GaussianBernoulliRBM, X, options
    return dlcore.BernoulliRBM, X, options


def dbn_case(case):
    X = binary_data(23, 12)
    y = np.arange(23) % 3
    options = dict(layers=[12, 6, 5], epochs=2, batch_size=7, learning_rate=0.1, momentum=0.5,
                   seed=4, backend="cpu")
    if case == "dbn-labels-sample":   # sampled states passed up, a labelled top RBM
        options.update(propagate="sample", n_labels=3)
        return dlcore.DBN, (X, y), options
    if case.startswith("dbn-up-down"):   # then contrastive wake-sleep, batches of 7 too
        options.update(layers=[12, 6, 5, 4], up_down_epochs=3, up_down_batch_size=7,
                       up_down_learning_rate=0.3, up_down_gibbs_steps=2)
        if case == "dbn-up-down-labels":
            options.update(n_labels=3, layers=[12, 6, 5])
            return dlcore.DBN, (X, y), options
    return dlcore.DBN, X, options


class Network:
    """A network case: ``fit`` builds, compiles and trains it as the RBM cases' classes do."""

    def __init__(self, convolutional, case="", **options):
        self.convolutional = convolutional
        self.epochs = options.get("epochs", 3)
        from dlcore.layers import (
            Conv2D,
            Dense,
            Dropout,
            Flatten,
            GaussianNoise,
            ImageAugmentation,
            MaxPool2D,
        )
        if self.convolutional:   # a small conv net: conv, pool, dense with dropout, softmax
            layers = [Conv2D(3, 3, padding=1, activation="relu"), MaxPool2D(2), Flatten(),
                      Dense(8, activation="tanh"), Dropout(0.3), Dense(3, activation="softmax")]
            shape = (1, 6, 6)
        else:
            layers = [Dense(8, activation="relu"), Dropout(0.4), Dense(6, activation="sigmoid"),
                      Dropout(0.2), Dense(3, activation="softmax")]
            shape = (12,)
        if case == "conv-augment-noise":   # images moved, then noise on the conv's features
            layers = [ImageAugmentation(max_shift=1, horizontal_flip=True, max_rotation=10),
                      *layers[:3], GaussianNoise(0.3), *layers[3:]]
        if case == "mlp-noise-adversarial":   # noise on the inputs; FGSM examples below
            layers = [GaussianNoise(0.2), *layers]
        self.adversarial = 0.1 if case == "mlp-noise-adversarial" else 0.0
        self.model = dlcore.Sequential(layers, input_shape=shape, backend=options["backend"],
                                       seed=options["seed"])
        self.model.compile(loss="cross_entropy", metrics=["accuracy"],
                           optimizer=dlcore.optimizers.SGD(learning_rate=0.1, momentum=0.9))

    def fit(self, x, y, comm=None, sync_every=1):
        self.model.fit(x, y, batch_size=7, epochs=self.epochs, verbose=0, comm=comm,
                       sync_every=sync_every, adversarial=self.adversarial)
        self.history = {"loss": self.model.history["loss"]}
        return self


def network_case(case):
    convolutional = case.startswith("conv")
    x = binary_data(23, 36 if convolutional else 12)
    if convolutional:
        x = x.reshape(23, 1, 6, 6)
    return ((lambda **options: Network(convolutional, case, **options)),
            (x, np.arange(23) % 3), dict(seed=4, backend="cpu"))


def autoencoder_case(case):
    X = binary_data(23, 12)
    options = dict(n_hidden=5, epochs=3, batch_size=7, learning_rate=0.1, momentum=0.5,
                   corruption=0.3, seed=4, backend="cpu")
    if case == "autoencoder-untied-gaussian":
        options.update(tied_weights=False, corruption_kind="gaussian", backend="reference")
    if case.startswith("autoencoder-sparse"):   # its rho^ is the global batch's mean
        options.update(sparsity_target=0.1, sparsity_cost=0.5)
        if case == "autoencoder-sparse-untied":
            options.update(tied_weights=False, backend="reference")
    return dlcore.Autoencoder, X, options


def stacked_case(case):
    X = binary_data(23, 12)
    options = dict(layers=[12, 6, 4], epochs=2, batch_size=7, learning_rate=0.1, momentum=0.5,
                   corruption=0.3, sparsity_target=0.1, sparsity_cost=0.3, seed=4,
                   backend="cpu")
    return dlcore.StackedAutoencoder, X, options


def parameters(model):
    """{name: array} of an RBM's, an autoencoder's, a DBN's or a network's parameters."""
    if isinstance(model, dlcore.StackedAutoencoder):
        return {f"ae{k}.{name}": array for k, autoencoder in enumerate(model.autoencoders_)
                for name, array in parameters(autoencoder).items()}
    if isinstance(model, dlcore.Autoencoder):
        return {name: getattr(model, name) for name in
                ("W", "visible_bias", "hidden_bias", "W_decoder") if hasattr(model, name)}
    if isinstance(model, Network):
        return {f"weight{k}": w for k, w in enumerate(model.model.get_weights())}
    if isinstance(model, dlcore.DBN):
        generative = {f"generative{k}.{name}": array for k, pair in
                      enumerate(model.generative_ or []) for name, array in zip("Gg", pair)}
        return {**{f"rbm{k}.{name}": getattr(rbm, name) for k, rbm in enumerate(model.rbms_)
                   for name in ("W", "visible_bias", "hidden_bias")}, **generative}
    arrays = {name: getattr(model, name) for name in ("W", "visible_bias", "hidden_bias")}
    chain = model._training.get("persistent_chain")
    if chain is not None:   # PCD's fantasy particles: where the next epoch's chains start
        arrays["persistent_chain"] = chain
    return arrays


def history(model):
    if isinstance(model, dlcore.StackedAutoencoder):
        return model.autoencoders_[-1].history["loss"]
    if isinstance(model, dlcore.Autoencoder):
        return model.history["loss"]
    if isinstance(model, Network):
        return model.history["loss"]
    if isinstance(model, dlcore.DBN):
        return model.history.get("up_down_reconstruction_error",
                                 model.history["rbm1_reconstruction_error"])
    return model.history["reconstruction_error"]


TRAINING = {"mlp-dropout": network_case, "conv-net": network_case,
            "mlp-noise-adversarial": network_case, "conv-augment-noise": network_case,
            "dbn": dbn_case,
            "dbn-labels-sample": dbn_case, "dbn-up-down": dbn_case,
            "dbn-up-down-labels": dbn_case, "rbm": rbm_case, "rbm-pcd": rbm_case,
            "rbm-pcd-last-batch": rbm_case, "rbm-cd2-mean-field": rbm_case,
            "rbm-learn": rbm_case, "gaussian": rbm_case,
            "autoencoder": autoencoder_case, "autoencoder-untied-gaussian": autoencoder_case,
            "autoencoder-sparse": autoencoder_case, "autoencoder-sparse-untied": autoencoder_case,
            "stacked-autoencoder": stacked_case}


def allreduce_case(comm):
    """Every rank's sum, bit for bit, against the sum in rank order computed here."""
    parts = [np.random.default_rng(rank).normal(size=(5, 7)).astype(np.float32) * 10 ** rank
             for rank in range(comm.size)]
    expected = parts[0].copy()
    for part in parts[1:]:
        expected += part
    got = comm.allreduce(parts[comm.rank].copy())
    # rank 0 alone prints, one line per rank: the launcher may splice lines that several ranks
    # print at once (a JSON line holding two objects made this test flaky)
    equal = np.zeros(comm.size, np.float32)
    equal[comm.rank] = float(np.array_equal(got, expected))
    equal = comm.allreduce(equal)
    if comm.is_root:
        for rank in range(comm.size):
            print(json.dumps({"rank": rank, "equal": bool(equal[rank] == 1)}), flush=True)


def node_local_rank_case(comm):
    """Each rank's number on its node (all here), as :func:`dlcore.distributed.init` found it
    and handed it to the backend, and the GPU that gives it on a node of two."""
    from dlcore import backend
    mine = {"local_rank": comm.local_rank, "local_size": comm.local_size,
            "backend_knows": backend._node_local_rank[0],
            "device_of_two": backend.cuda_device_index(2)}
    # two groups of a Split on the node, ranks (0, 1) and (2,), each numbering its ranks
    # afresh: the GPUs still go by the job's node-local ranks
    group = comm.mpi_comm.Split(comm.rank // 2, comm.rank)
    dlcore.distributed.as_communicator(group)
    mine["in_a_group_device_of_four"] = backend.cuda_device_index(4)
    # the same under a launcher that says no node-local rank (mpiexec.gforker inside a Slurm
    # job: only the batch step's SLURM_LOCALID=0 and SLURM_PROCID=0), after init()
    launchers = {name: os.environ.pop(name) for name in list(os.environ)
                 if name.startswith(("MPI_LOCAL", "PMI_LOCAL", "OMPI_", "MV2_", "SLURM_"))}
    os.environ.update(SLURM_LOCALID="0", SLURM_PROCID="0")
    try:
        dlcore.distributed.as_communicator(comm.mpi_comm.Split(comm.rank // 2, comm.rank))
        mine["unsaid_in_a_group_device_of_four"] = backend.cuda_device_index(4)
    finally:
        for name in ("SLURM_LOCALID", "SLURM_PROCID"):
            os.environ.pop(name)
        os.environ.update(launchers)
    # a group given to fit with no init() first, under mpiexec.gforker (PMI_FD, PMI_RANK,
    # PMI_SIZE and MPI_APPNUM only: it forks every rank on its own node): the GPUs and the
    # cores still go by the job's ranks on the node, not by the group's
    from dlcore.distributed import communicator as communicator_module
    job_on_the_node = list(communicator_module._JOB_ON_THE_NODE)
    launchers = {name: os.environ.pop(name) for name in list(os.environ)
                 if name.startswith(("MPI_LOCAL", "PMI_LOCAL", "OMPI_", "MV2_", "SLURM_", "HYDI_",
                                     "PMI_PORT"))}
    saved_pmi = {name: os.environ.get(name)
                 for name in ("PMI_FD", "PMI_RANK", "PMI_SIZE", "MPI_APPNUM")}
    os.environ.update(PMI_FD=os.environ.get("PMI_FD", "9"), PMI_RANK=str(comm.rank),
                      PMI_SIZE=str(comm.size), MPI_APPNUM="0")
    communicator_module._JOB_ON_THE_NODE.clear()
    try:
        group = dlcore.distributed.as_communicator(
            comm.mpi_comm.Split(comm.rank // 2, comm.rank))
        mine["no_init_gforker_device_of_four"] = backend.cuda_device_index(4)
        mine["no_init_gforker_ranks_sharing"] = communicator_module.ranks_sharing_the_node(group)
    finally:
        communicator_module._JOB_ON_THE_NODE[:] = job_on_the_node
        for name, value in saved_pmi.items():
            os.environ.pop(name, None)
            if value is not None:
                os.environ[name] = value
        os.environ.update(launchers)
    every_rank = comm.mpi_comm.gather(mine, root=0)
    if comm.is_root:
        for rank, seen in enumerate(every_rank):
            print(json.dumps({"rank": rank, **seen}), flush=True)


def mpi4py_communicator_case():
    """The user's own mpi4py communicators, with no init(): ``MPI.COMM_WORLD`` and a Split of
    it (every rank in one group, in reverse order) given to ``fit`` as they are, and to
    ``init(comm=...)``. Rank 0 prints one JSON line per case: the differences from one
    process, and whether the abort-on-error hook was installed as init() installs it."""
    import sys
    MPI = dlcore.distributed._mpi()   # mpi4py, with the MPI library found as init() finds it
    world = MPI.COMM_WORLD
    group = world.Split(0, world.Get_size() - world.Get_rank())
    model_class, X, options = rbm_case("rbm")
    alone = parameters(model_class(**options).fit(X)) if world.Get_rank() == 0 else None
    for name, comm in (("COMM_WORLD", world), ("Split", group)):
        together = model_class(**options).fit(X, comm=comm)
        wrapped = dlcore.distributed.as_communicator(comm)
        if world.Get_rank() == 0:
            print(json.dumps({
                "case": name, "size": wrapped.size, "rank": wrapped.rank,
                "same_wrapper": dlcore.distributed.as_communicator(comm) is wrapped,
                "abort_hook": sys.excepthook is not sys.__excepthook__,
                "differences": {key: float(np.max(np.abs(parameters(together)[key] - value)))
                                for key, value in alone.items()}}), flush=True)
    communicator = dlcore.distributed.init(comm=group, threads=None)
    # lazy rows' mean over the ranks: mpi4py's own allreduce returns the sum, not in place
    images = dlcore.datasets.load_mnist_5k(lazy=True)[0][:300]
    shared = dlcore.datasets.to_unit_interval(images).over(world).mean(axis=0)
    whole = dlcore.datasets.to_unit_interval(np.asarray(images)).mean(axis=0)
    if world.Get_rank() == 0:
        print(json.dumps({"case": "init", "size": communicator.size, "rank": communicator.rank,
                          "lazy_mean": float(np.max(np.abs(shared - whole)))}), flush=True)


def callbacks_case(comm, case):
    """A network fit whose callbacks differ between the ranks. ``callbacks-rank0-only``: an
    EarlyStopping on rank 0 alone (refused: rank 0 would stop alone). ``callbacks-logging``:
    the same EarlyStopping on every rank (printing on rank 0 only), and a CSVLogger and a
    ModelCheckpoint on rank 0 alone: rank 0 prints every rank's epochs and a CRC-32 of its
    weights."""
    import os
    import tempfile

    from dlcore import callbacks as keras_like
    x, y = binary_data(23, 12), np.arange(23) % 3
    network = Network(False, seed=4, backend="cpu").model
    stopping = dict(monitor="loss", min_delta=1.0, patience=0)   # stops after epoch 2
    if case == "callbacks-rank0-only":
        callbacks = [keras_like.EarlyStopping(**stopping)] if comm.is_root else []
    else:
        callbacks = [keras_like.EarlyStopping(**stopping, verbose=int(comm.is_root))]
        folder = tempfile.mkdtemp()
        if comm.is_root:   # Horovod's habit: files written by rank 0 only
            callbacks += [keras_like.CSVLogger(os.path.join(folder, "log.csv")),
                          keras_like.ModelCheckpoint(os.path.join(folder, "model.h5"))]
    network.fit(x, y, batch_size=7, epochs=5, verbose=0, callbacks=callbacks, comm=comm)
    weights = b"".join(np.ascontiguousarray(w).tobytes() for w in network.get_weights())
    every_rank = comm.gather((network.epochs_done, zlib.crc32(weights)))
    if comm.is_root:
        print(json.dumps({"case": case, "epochs": [epochs for epochs, _ in every_rank],
                          "crc": [crc for _, crc in every_rank],
                          "files": sorted(os.listdir(folder))}), flush=True)


def backup_case(comm, case):
    """A network with dropout and momentum fitted for 4 epochs with a BackupAndRestore of the
    relative folder "backup", each rank in a folder of its own under $DLCORE_TEST_BACKUP (a
    node's local disk: rank 1 never sees rank 0's file). ``backup-interrupted``: rank 1 sends
    itself a SIGINT in the third epoch (the job ends with 130). ``backup-rerun``: the same fit
    run again, and the same network fitted without interruption; rank 0 prints, for every
    rank, whether the resumed fit ended with the uninterrupted weights and losses, bit for
    bit, the epochs it ran and what is left in the rank's folder."""
    import signal

    from dlcore import callbacks as keras_like

    class SigintOnRank1(keras_like.Callback):
        changes_training = False   # on rank 1 alone

        def on_train_batch_end(self, batch, logs=None):
            if self.model.epochs_done == 2 and batch == 1:
                os.kill(os.getpid(), signal.SIGINT)

    folder = Path(os.environ["DLCORE_TEST_BACKUP"]) / f"rank-{comm.rank}"
    folder.mkdir(exist_ok=True)
    started_in = os.getcwd()
    os.chdir(folder)
    try:   # the cases after it in a shared job run where the job started
        backup_run(comm, case, SigintOnRank1)
    finally:
        os.chdir(started_in)


def backup_run(comm, case, interruption):
    """:func:`backup_case`'s fits, in the rank's folder."""
    from dlcore import callbacks as keras_like
    x, y = binary_data(23, 12), np.arange(23) % 3
    callbacks = [keras_like.BackupAndRestore("backup")]
    if case == "backup-interrupted":
        network = Network(False, seed=4, backend="cpu").model
        network.fit(x, y, batch_size=7, epochs=4, verbose=0, comm=comm,
                    callbacks=callbacks + ([interruption()] if comm.rank == 1 else []))
        return
    uninterrupted = Network(False, seed=4, backend="cpu").model
    uninterrupted.fit(x, y, batch_size=7, epochs=4, verbose=0, comm=comm)
    found = sorted(os.listdir("."))
    resumed = Network(False, seed=4, backend="cpu").model
    ran = resumed.fit(x, y, batch_size=7, epochs=4, verbose=0, comm=comm, callbacks=callbacks)
    every_rank = comm.gather({
        "found": found, "epochs": ran.epoch, "left": sorted(os.listdir(".")),
        "same_weights": all(np.array_equal(a, b) for a, b in
                            zip(resumed.get_weights(), uninterrupted.get_weights())),
        "same_losses": resumed.history["loss"] == uninterrupted.history["loss"]})
    if comm.is_root:
        print(json.dumps({"case": case, "ranks": every_rank}), flush=True)


#: How many functions the compiling rank of "interrupt-rank-1-while-rank-0-compiles" compiles:
#: tens of seconds' worth, far longer than the interrupted rank takes to say so.
COMPILATIONS = 400


def fresh_function(constant):
    """A jitted function never compiled before (a new dispatcher: its first call compiles)."""
    import numba
    return numba.njit(lambda x: x + constant)


def busy_rank_hears_a_peer(comm):
    """Rank 1 says it got a SIGTERM half a second after both ranks set off, while rank 0
    computes in Python without any MPI call (a sweep's run, until it hears it, for
    :data:`NEVER_SECONDS` at most): rank 0 prints
    after how many seconds it stopped, and as what. On a communicator of its own, so that
    the job's own goes on watching for the other cases."""
    import signal
    import time

    from dlcore.distributed.communicator import Communicator
    own = Communicator(comm.mpi_comm.Dup())
    own.watch_interrupts()
    comm.barrier()
    started = time.monotonic()
    if own.rank == 1:
        time.sleep(0.5)
        own.interrupt_others(signal.SIGTERM)
        return
    heard = None
    try:
        with own.hearing_peers_while_busy():
            while time.monotonic() - started < NEVER_SECONDS:
                sum(range(1000))
    except dlcore.distributed.PeerInterrupted as error:
        heard = {"reason": error.reason, "seconds": time.monotonic() - started}
    print(json.dumps({"case": "peer-interrupted-while-busy", "heard": heard}), flush=True)


def main(cases):
    if cases[:1] == ["--one-process"]:   # no MPI: the one process's training of each case
        for case in cases[1:]:
            one_process(case, functools.partial(fit_alone, case))
        return
    if cases == ["mpi4py-comm"]:   # before any init(): the user's communicators alone
        mpi4py_communicator_case()
        return
    timeout = 2 if {"hang", "fail", "fail-everywhere", "interrupt-rank-1-while-rank-0-blocks"
                    } & set(cases) else 60
    if "exit-rank-1" in cases:   # rank 0 must stop at once, not after the timeout
        timeout = NEVER_SECONDS
    if "no-timeout" in cases:   # what dlcore sweep gives its ranks
        timeout = math.inf
    comm = dlcore.distributed.init(timeout=timeout,
                                   **({"threads": 1} if "product-blocks" in cases else {}))
    for case in cases:
        if comm.is_root:   # where this case's lines begin, for a job that several tests share
            print(json.dumps({"begin": case}), flush=True)
        if case == "allreduce":
            allreduce_case(comm)
        elif case == "hang":   # rank 1 never joins the sum: rank 0 must give up and stop all
            if comm.rank == 1:
                import time
                time.sleep(NEVER_SECONDS)
            comm.allreduce(np.ones(3, np.float32))
        elif case == "fail":   # rank 1 fails before training: every rank must stop at once
            if comm.rank == 1:
                raise ValueError("rank 1 could not read its data")
            X = binary_data(4, 3)
            dlcore.BernoulliRBM(n_hidden=2, epochs=1, backend="cpu").fit(X, comm=comm)
        elif case == "fail-everywhere":   # an error every rank meets: one line, rank 0's
            raise ValueError(f"rank {comm.rank} met the error every rank meets")
        elif case in ("interrupt-rank-1", "interrupt-everywhere"):
            # a Ctrl-C that escapes the script: on rank 1 alone while rank 0 waits in a sum,
            # or on every rank (the launcher passes a Ctrl-C to each)
            if case == "interrupt-everywhere" or comm.rank == 1:
                raise KeyboardInterrupt
            comm.allreduce(np.ones(3, np.float32))
        elif case == "interrupt-rank-1-while-rank-0-compiles":
            # rank 0 compiles functions one after another, as a first epoch compiles its
            # kernels, before its first sum; rank 1 is interrupted at once
            if comm.rank == 1:
                raise KeyboardInterrupt
            compiled = 0
            try:
                for constant in range(COMPILATIONS):
                    fresh_function(constant)(1.0)
                    compiled += 1
                comm.allreduce(np.ones(3, np.float32))
            finally:
                print(json.dumps({"compiled": compiled}), flush=True)
        elif case == "interrupt-everywhere-while-rank-0-saves":
            # the launcher's Ctrl-C on every rank; rank 0 saves a checkpoint for longer than
            # rank 1 takes to end (its second's wait for rank 0's line, then its own)
            import time
            try:
                raise KeyboardInterrupt
            except KeyboardInterrupt:
                if comm.is_root:
                    time.sleep(dlcore.distributed.communicator.FAILURE_GRACE_SECONDS + 1.5)
                    print(json.dumps({"saved": True}), flush=True)
                raise
        elif case == "interrupt-rank-1-while-rank-0-blocks":
            # rank 0 in a blocking call of mpi4py's own, which no notice reaches
            if comm.rank == 1:
                raise KeyboardInterrupt
            comm.mpi_comm.Barrier()
        elif case == "terminate-rank-1":   # a SIGTERM to rank 1 alone, in a script that asks
            import signal
            with dlcore.interrupt_on_termination():
                if comm.rank == 1:
                    os.kill(os.getpid(), signal.SIGTERM)
                comm.allreduce(np.ones(3, np.float32))
        elif case == "exit-rank-1":   # rank 1's script ends early: rank 0 waits in its fit
            if comm.rank == 1:
                sys.exit("rank 1 has no data")
            X = binary_data(4, 3)
            dlcore.BernoulliRBM(n_hidden=2, epochs=1, backend="cpu").fit(X, comm=comm)
        elif case == "other-data":
            X = binary_data(10, 4, seed=comm.rank)
            dlcore.BernoulliRBM(n_hidden=2, epochs=1, backend="cpu").fit(X, comm=comm)
        elif case == "other-sizes":   # the same data, another RBM on rank 1
            dlcore.BernoulliRBM(n_hidden=2 + comm.rank, epochs=1, backend="cpu").fit(
                binary_data(10, 4), comm=comm)
        elif case in ("other-optimizer", "other-epochs"):   # the same data and network
            network = dlcore.models.mlp(input_shape=(4,), hidden=(3,), n_classes=2,
                                        backend="cpu")
            rate = 0.1 * (1 + comm.rank) if case == "other-optimizer" else 0.1
            network.compile("cross_entropy", dlcore.optimizers.SGD(rate))
            network.fit(binary_data(10, 4), np.arange(10) % 2, batch_size=5, verbose=0,
                        epochs=1 + comm.rank if case == "other-epochs" else 1, comm=comm)
        elif case == "node-local-rank":
            node_local_rank_case(comm)
        elif case == "no-timeout":
            pass
        elif case == "gather-arrived":   # what an interrupted sweep's rank 0 collects
            every_rank = comm.gather_arrived({"rows": list(range(comm.rank + 1))}, 60)
            # then rank 1 sends nothing: rank 0 keeps its own value after its wait
            alone = comm.gather_arrived("rank 0's", 0.5) if comm.is_root else None
            if comm.is_root:
                print(json.dumps({"case": case, "every_rank": {str(rank): value for rank, value
                                                               in every_rank.items()},
                                  "alone": alone}), flush=True)
        elif case == "peer-interrupted-while-busy":
            busy_rank_hears_a_peer(comm)
        elif case == "product-blocks":   # the blocks of the products after init()
            from dlcore.backend.cpu import product_parts
            if comm.is_root:
                print(json.dumps({"threads": comm.threads, "blocks": product_parts()}))
        elif case.startswith("callbacks-"):
            callbacks_case(comm, case)
        elif case.startswith("backup-"):
            backup_case(comm, case)
        elif case.startswith("local:"):
            train_local(comm, *case.split(":")[1:])
        elif case.startswith("averaged:"):   # local SGD averaging after every step
            train(dlcore.distributed.Periodic(comm, 1), case.split(":")[1])
        else:
            train(comm, case)


def fit_alone(case):
    """``case`` trained in one process, as :func:`train` trains it on the ranks."""
    model_class, X, options = TRAINING[case](case)
    return model_class(**options).fit(*(X if isinstance(X, tuple) else (X,)))


def one_process(case, fit):
    """The parameters and monitor history of ``case`` trained in one process (``fit()``),
    kept in the folder $DLCORE_TEST_ONE_PROCESS names where it is set: the same training
    whatever the number of ranks, so another run of the case (2 ranks after 3, another test)
    reads it rather than training it again while the other ranks wait."""
    folder = os.environ.get("DLCORE_TEST_ONE_PROCESS")
    saved = Path(folder) / f"{case}.npz" if folder else None
    if saved is not None and saved.exists():
        with np.load(saved) as arrays:
            kept = dict(arrays)
        return kept, kept.pop("_history").tolist()   # parameter names never start with _
    alone = fit()
    arrays, monitored = parameters(alone), history(alone)
    if saved is not None:
        partial = saved.with_suffix(".partial.npz")
        np.savez(partial, _history=np.asarray(monitored, np.float64), **arrays)
        partial.replace(saved)
    return arrays, monitored


def train(comm, case):
    model_class, X, options = TRAINING[case](case)
    data = X if isinstance(X, tuple) else (X,)
    together = model_class(**options).fit(*data, comm=comm)
    if not comm.is_root:
        return
    alone_parameters, alone_history = one_process(case, functools.partial(fit_alone, case))
    together_parameters = parameters(together)
    differences = {name: float(np.max(np.abs(together_parameters[name] - value)))
                   for name, value in alone_parameters.items()}
    print(json.dumps({"case": case, "ranks": comm.size, "differences": differences,
                      "errors": [history(together), alone_history],
                      "moved": float(np.max(np.abs(alone_parameters[next(iter(differences))]))),
                      "threads": comm.threads}))


def state(model):
    """{name: array} of what training carries besides the parameters: the RBMs' and the
    autoencoder's velocities (and chains), a network's optimiser slots."""
    if isinstance(model, Network):
        slots = model.model.optimizer.get_state(model.model.parameters)["slots"]
        return {f"{layer}/{weight}/{slot}": value for layer, weights in slots.items()
                for weight, named in weights.items() for slot, value in named.items()}
    if isinstance(model, dlcore.DBN):
        return {f"rbm{k}.{name}": value for k, rbm in enumerate(model.rbms_)
                for name, value in rbm._training.items() if value is not None}
    return {name: value for name, value in model._training.items() if value is not None}


def train_local(comm, case, sync_every, epochs=None):
    """``local:CASE:K[:EPOCHS]``: the training case CASE with sync_every=K (and EPOCHS epochs).
    Rank 0 prints, for every rank, a CRC-32 of its parameters and training state and the
    all-reduces it made; for itself also the difference from one process and the monitor's
    history. One printer: lines printed by several ranks at once can be spliced into one by
    the launcher."""
    model_class, X, options = TRAINING[case](case)
    if epochs is not None:
        options["epochs"] = int(epochs)
    data = X if isinstance(X, tuple) else (X,)
    calls = comm.allreduce_calls
    together = model_class(**options).fit(*data, comm=comm, sync_every=int(sync_every))
    arrays = {**parameters(together), **state(together)}
    result = {"case": case, "sync_every": int(sync_every), "rank": comm.rank,
              "allreduces": comm.allreduce_calls - calls, "names": sorted(arrays),
              "crc": zlib.crc32(b"".join(np.ascontiguousarray(arrays[name]).tobytes()
                                         for name in sorted(arrays)))}
    every_rank = comm.gather(result)
    if comm.is_root:
        alone = parameters(model_class(**options).fit(*data))
        every_rank[0].update(errors=history(together), differences={
            name: float(np.max(np.abs(parameters(together)[name] - value)))
            for name, value in alone.items()})
        for rank_result in every_rank:
            print(json.dumps(rank_result), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
