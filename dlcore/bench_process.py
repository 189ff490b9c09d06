"""Another library's bench contenders in a process of its own, run as that library runs alone.

In one process dlcore and PyTorch share one OpenMP runtime (libgomp is loaded once, by whichever
library asks first), and the runtime reads how its threads wait between parallel regions once,
when it is loaded. dlcore asks for a short spin or for passive waiting, as the machine allows
at import (:mod:`dlcore.backend.threads`); PyTorch on its own leaves libgomp's default, which
spins for some milliseconds after each region. On an idle machine the spinning pays: with both
in one process under dlcore's passive setting, PyTorch's fine-tuning epoch of ``dlcore bench
mlp`` took 1.98-2.24 s against 1.36-1.43 s under its own default (2-core AMD EPYC, AVX2, 20,000
images). A bench that timed PyTorch under dlcore's setting would not time it as its users run
it.

So ``dlcore bench`` builds PyTorch's contenders in a child process, started with the
environment the user gave (:func:`dlcore.backend.threads.user_environment`: without what
dlcore added) and importing the library before anything else. The parent keeps the
alternation and the clock: a :class:`ContenderProcess` contender's ``run`` asks the child to run
and waits for its answer (a few hundred microseconds of messages on runs of 0.1 s and more).

Messages are pickles on the child's standard input and output, between two processes of the
same program; nothing here reads a file.
"""
import atexit
import functools
import importlib
import os
import pickle
import subprocess
import sys

from dlcore.backend import threads
from dlcore.bench import Contender

#: the child's program: the library first (its OpenMP runtime reads the environment as the
#: user gave it), then the loop that answers the parent
BOOTSTRAP = "import {first_import}\nfrom dlcore.bench_process import serve\nserve()\n"


class ContenderProcess:
    """A child process that builds contenders (:meth:`contenders`) and runs them on request.

    Parameters
    ----------
    first_import : str, the module the child imports first ("torch")
    environment : dict or None, the child's environment (default: the user's, without what
        dlcore set: :func:`dlcore.backend.threads.user_environment`)
    """

    def __init__(self, first_import="torch", environment=None):
        self.first_import = first_import
        self.process = subprocess.Popen(
            [sys.executable, "-c", BOOTSTRAP.format(first_import=first_import)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            env=threads.user_environment() if environment is None else environment)
        self.size = 0

    def contenders(self, factory, *args, **kwargs):
        """``factory(*args, **kwargs)`` called in the child ("module:function", returning
        contenders); here, one :class:`~dlcore.bench.Contender` per contender it built, each
        run and warm-up done by the child."""
        described = self._ask("build", factory, args, kwargs)
        first, self.size = self.size, self.size + len(described)
        return [Contender(name, functools.partial(self._ask, "run", first + index), work,
                          warm_up=(functools.partial(self._ask, "warm_up", first + index)
                                   if has_warm_up else None), repeats=repeats)
                for index, (name, work, has_warm_up, repeats) in enumerate(described)]

    def _ask(self, *message):
        try:
            pickle.dump(message, self.process.stdin, protocol=pickle.HIGHEST_PROTOCOL)
            self.process.stdin.flush()
            status, value = pickle.load(self.process.stdout)
        except Exception:  # noqa: BLE001  (gone, or its answers garbled: either way it is over)
            if self.process.poll() is None:
                self.process.kill()
            code = self.process.wait()
            raise RuntimeError(f"the process of the {self.first_import} contenders ended (exit "
                               f"status {code}; its error is above): leave them out to time "
                               f"dlcore alone (--skip-torch; bench rbm: --skip torch)") from None
        if status == "error":
            raise RuntimeError(f"{self.first_import} contender failed in its process: {value}")
        return value

    def close(self):
        """Ask the child to stop, wait for it, and close the pipes to it (left open, Python
        warns of them at exit)."""
        if self.process.poll() is None:
            try:
                self._ask("exit")
            except RuntimeError:
                pass
            self.process.wait()
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None and not pipe.closed:
                try:
                    pipe.close()
                except OSError:  # the child is gone and the write end's buffer with it
                    pass

    def __enter__(self):
        return self

    def __exit__(self, *exception):
        self.close()


def serve(messages=None, answers=None):
    """The child's loop: build contenders, run them, answer each message with ``("ok",
    value)`` or ``("error", "Type: message")``, until ``exit`` or the parent is gone."""
    messages = sys.stdin.buffer if messages is None else messages
    if answers is None:
        # the answers keep the pipe; whatever the workloads print, from Python or from C,
        # goes to standard error instead of into the answers
        answers = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
        os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.stdout = sys.stderr
    built = []
    try:
        while _answer(pickle.load(messages), built, answers):
            pass
    except (EOFError, KeyboardInterrupt):   # the parent is gone, or Ctrl-C reached both
        return


def _answer(message, built, answers):
    """Do what ``message`` asks, answer it; False after ``exit``."""
    kind, *arguments = message
    try:
        value = None
        if kind == "build":
            factory, args, kwargs = arguments
            module, name = factory.split(":")
            made = list(getattr(importlib.import_module(module), name)(*args, **kwargs))
            built.extend(made)
            value = [(c.name, c.work, c.warm_up is not None, c.repeats) for c in made]
        elif kind == "run":
            built[arguments[0]].run()
        elif kind == "warm_up":
            built[arguments[0]].warm_up()
        answer = ("ok", value)
    except Exception as error:  # noqa: BLE001  (the parent words it; the child goes on)
        answer = ("error", f"{type(error).__name__}: {error}")
    pickle.dump(answer, answers, protocol=pickle.HIGHEST_PROTOCOL)
    answers.flush()
    return kind != "exit"


_SHARED = {}


def shared_process(first_import="torch"):
    """The one child of this bench run for ``first_import``'s contenders (started on first
    use, stopped when Python exits)."""
    process = _SHARED.get(first_import)
    if process is None or process.process.poll() is not None:
        process = _SHARED[first_import] = ContenderProcess(first_import)
        atexit.register(process.close)
    return process
