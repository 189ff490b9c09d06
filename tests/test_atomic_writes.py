"""Every file dlcore writes goes through its one atomic writer (dlcore.io.atomic); a command
that fails before writing leaves no empty --out folder; an image --out must end in .png."""
import ast
import contextlib
import errno
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import dlcore
from dlcore.cli import main
from dlcore.io import atomic as atomic_module
from dlcore.io.atomic import atomic_open, atomic_output_path

ROOT = Path(__file__).resolve().parents[1]
SOURCE_FOLDERS = ("cli", "dlcore", "datasets")
THE_WRITER = ROOT / "dlcore" / "io" / "atomic.py"
ATOMIC_CONTEXTS = {"atomic_output_path", "atomic_open", "atomic_writer"}
WRITE_MODE_LETTERS = set("wax+")


def sources():
    for folder in SOURCE_FOLDERS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path != THE_WRITER:
                yield path


def called_name(call):
    function = call.func
    return function.attr if isinstance(function, ast.Attribute) else getattr(function, "id", "")


def mode_of(call, position):
    """The mode string of an open()-like call (None when not given as a literal)."""
    for keyword in call.keywords:
        if keyword.arg == "mode":
            return keyword.value.value if isinstance(keyword.value, ast.Constant) else "?"
    if len(call.args) > position:
        argument = call.args[position]
        return argument.value if isinstance(argument, ast.Constant) else "?"
    return None


def writes_an_image(call):
    """True for an image writer that takes a file name: Pillow's ``Image.save(path)`` (any
    ``.save`` but NumPy's, dlcore's own model writer ``dlcore.save``, an object's own
    ``self.save`` and a dlcore model's ``model.save``, which write through the atomic writer
    themselves) and matplotlib's ``savefig(path)``."""
    name = called_name(call)
    owner = getattr(getattr(call.func, "value", None), "id", None)
    return name == "savefig" or (name == "save" and isinstance(call.func, ast.Attribute)
                                 and owner not in ("np", "numpy", "dlcore", "self", "model"))


def writes_a_file(call):
    """True for a call that creates or changes a file by name: open() or h5py.File() in a
    write mode, Path.write_text/write_bytes, NumPy's save/savez/tofile, the image writers."""
    name = called_name(call)
    owner = getattr(getattr(call.func, "value", None), "id", None)
    if name in ("write_text", "write_bytes", "tofile") or writes_an_image(call):
        return True
    if name in ("save", "savez", "savez_compressed"):
        return owner in ("np", "numpy")
    if name == "open" and owner != "os":     # os.open: only inside the atomic writer
        mode = mode_of(call, 1)
        return mode is not None and bool(WRITE_MODE_LETTERS & set(mode))
    if name == "File" and owner == "h5py":
        return mode_of(call, 1) not in (None, "r")
    return False


def enclosing_atomic_items(node, parents):
    """The ``with`` items around ``node`` that open an atomic writer."""
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.With):
            for item in node.items:
                expression = item.context_expr
                if isinstance(expression, ast.Call) and called_name(expression) in ATOMIC_CONTEXTS:
                    yield item


def inside_atomic_block(node, parents):
    return any(True for _ in enclosing_atomic_items(node, parents))


def first_argument(call, keywords):
    if call.args:
        return call.args[0]
    return next((keyword.value for keyword in call.keywords if keyword.arg in keywords), None)


def writes_to_the_temporary_path(call, parents):
    """True when the file an image writer names is the temporary path of an enclosing
    ``with atomic_output_path(...) as temporary`` (an image saved to the real target inside
    that block would still be written in place)."""
    target = first_argument(call, ("fp", "fname"))
    temporaries = {item.optional_vars.id for item in enclosing_atomic_items(call, parents)
                   if called_name(item.context_expr) == "atomic_output_path"
                   and isinstance(item.optional_vars, ast.Name)}
    return isinstance(target, ast.Name) and target.id in temporaries


def written_outside_the_atomic_writer(call, parents):
    if not writes_a_file(call):
        return False
    if writes_an_image(call):
        return not writes_to_the_temporary_path(call, parents)
    return not inside_atomic_block(call, parents)


def offending_lines(tree):
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    return sorted(node.lineno for node in ast.walk(tree) if isinstance(node, ast.Call)
                  and written_outside_the_atomic_writer(node, parents))


def test_no_file_is_written_outside_the_one_atomic_writer():
    offenders = []
    for path in sources():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        offenders += [f"{path.relative_to(ROOT)}:{line}" for line in offending_lines(tree)]
    assert offenders == [], ("write these through dlcore.io.atomic (atomic_open or "
                             f"atomic_output_path): {offenders}")


def test_the_scan_finds_a_plain_write():
    tree = ast.parse("with open(name, 'w', newline='') as f:\n    f.write('x')\n"
                     "Path(name).write_text('x')\nwith atomic_open(name) as f:\n    pass\n")
    assert offending_lines(tree) == [1, 3]


def test_the_scan_finds_images_not_saved_to_the_temporary_path():
    tree = ast.parse(
        "Image.fromarray(grey).save(path, format='PNG')\n"              # 1: in place
        "figure.savefig(fname=path)\n"                                  # 2: in place
        "with atomic_output_path(path) as temporary:\n"
        "    image.save(temporary, format='PNG')\n"                     # 4: atomic
        "    figure.savefig(temporary, dpi=100)\n"                      # 5: atomic
        "    figure.savefig(path)\n"                                    # 6: the real target
        "with atomic_open(path, 'wb') as stream:\n"
        "    image.save(path)\n"                                        # 8: the real target
        "dlcore.save(model, path)\nself.save(model)\nnp.save(path, a)\n")   # 9, 10: atomic
    assert offending_lines(tree) == [1, 2, 6, 8, 11]


def test_atomic_open_replaces_the_file_only_when_the_block_ends(tmp_path):
    target = tmp_path / "table.csv"
    target.write_text("old\n")
    with pytest.raises(RuntimeError), atomic_open(target, "w", newline="") as stream:
        stream.write("half of the new")
        assert target.read_text() == "old\n"
        raise RuntimeError("the disk is full")
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["table.csv"]
    with atomic_open(target, "w", newline="") as stream:
        stream.write("new\n")
    assert target.read_text() == "new\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["table.csv"]


def test_a_replaced_file_keeps_its_permissions_and_as_root_its_owner(tmp_path, monkeypatch):
    """open(path, "w"), cp, numpy.save and h5py write over a file in place, keeping its mode
    (and its owner, also as root); the rename left a file of the umask's mode: a private
    model (600) made readable by all, and as root, who may replace a 444 file, its
    protection dropped and a student's file made root's."""
    private, protected = tmp_path / "private.csv", tmp_path / "protected.csv"
    for path, mode in ((private, 0o600), (protected, 0o444)):
        path.write_text("old\n")
        path.chmod(mode)
    owners = []   # root alone may give a file to another user: the call root makes, recorded
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(os, "chown", lambda path, uid, gid: owners.append((uid, gid)))
    monkeypatch.setattr(os, "access", lambda path, mode: True)   # root's answer
    for path in (private, protected):
        with atomic_open(path, "w") as stream:
            stream.write("new\n")
        assert path.read_text() == "new\n"
    assert private.stat().st_mode & 0o777 == 0o600
    assert protected.stat().st_mode & 0o777 == 0o444
    assert owners == [(private.stat().st_uid, private.stat().st_gid),
                      (protected.stat().st_uid, protected.stat().st_gid)]
    fresh = tmp_path / "fresh.csv"   # a new file: the umask decides, as for open()
    with atomic_open(fresh, "w") as stream:
        stream.write("new\n")
    umask = os.umask(0)
    os.umask(umask)
    assert fresh.stat().st_mode & 0o777 == 0o666 & ~umask and len(owners) == 2


def test_a_symbolic_link_is_written_through_and_stays_a_link(tmp_path):
    """open(path, "w"), numpy.save and h5py write through a symbolic link; the rename
    replaced the link by a file of its own, and the file the link named stayed old."""
    kept, links = tmp_path / "kept", tmp_path / "links"
    kept.mkdir()
    links.mkdir()
    best = kept / "best.csv"
    best.write_text("old\n")
    (links / "best.csv").symlink_to(best)
    (links / "dangling.csv").symlink_to(kept / "new.csv")   # open("w") creates its file
    for name in ("best.csv", "dangling.csv"):
        with atomic_open(links / name, "w") as stream:
            stream.write("new\n")
        assert (links / name).is_symlink() and (links / name).read_text() == "new\n"
    assert best.read_text() == (kept / "new.csv").read_text() == "new\n"
    assert sorted(p.name for p in kept.iterdir()) == ["best.csv", "new.csv"]
    assert sorted(p.name for p in links.iterdir()) == ["best.csv", "dangling.csv"]
    (links / "loop.csv").symlink_to(links / "loop.csv")
    with pytest.raises(OSError, match="lead in a loop") as caught, \
            atomic_open(links / "loop.csv", "w"):
        pass
    assert caught.value.errno == errno.ELOOP and (links / "loop.csv").is_symlink()


_WRITE_IN_A_CLOSED_FOLDER = """
import importlib.util, json, sys
# the writer alone (the standard library's), not dlcore's import: the test stays quick
spec = importlib.util.spec_from_file_location("atomic", sys.argv[2])
atomic = importlib.util.module_from_spec(spec)
spec.loader.exec_module(atomic)
folder = sys.argv[1]
with atomic.atomic_output_path(folder + "/model.h5") as temporary:
    with open(temporary, "wb") as stream:   # as h5py writes the path it is given
        stream.write(b"the new model, longer than the old one")
with atomic.atomic_open(folder + "/table.csv", "w") as stream:
    stream.write("new\\n")
try:   # a writer that fails leaves the file as it was
    with atomic.atomic_open(folder + "/kept.csv", "w") as stream:
        stream.write("half of the new")
        raise RuntimeError("the writer failed")
except RuntimeError:
    pass
try:
    with atomic.atomic_open(folder + "/new.csv", "w") as stream:
        stream.write("new\\n")
except OSError as error:
    print(json.dumps([type(error).__name__, str(error)]))
"""


def test_a_writable_file_in_a_folder_that_takes_no_new_file_is_written_in_place(tmp_path):
    """A teacher's hand-in folder (mode 555) of files the students may write (mode 666):
    open(path, "w") and h5py write such a file in place, where dlcore's rename was refused
    (FolderNotWritableError). It is written in place now, its new version made whole
    elsewhere first; a new file there is still refused in one line."""
    from test_cli_outputs import without_root_rights
    prefix = without_root_rights()
    handin = tmp_path / "handin"
    handin.mkdir()
    for name in ("kept.csv", "model.h5", "table.csv"):
        (handin / name).write_bytes(b"the student's old file")
        (handin / name).chmod(0o666)
    handin.chmod(0o555)
    result = subprocess.run([*prefix, sys.executable, "-c", _WRITE_IN_A_CLOSED_FOLDER,
                             str(handin), str(THE_WRITER)], capture_output=True, text=True,
                            timeout=120, env=dict(os.environ, TMPDIR=str(tmp_path)))
    assert result.returncode == 0, result.stderr
    kind, message = json.loads(result.stdout)
    assert kind == "FolderNotWritableError" and "\n" not in message
    assert message.startswith(f"cannot write {handin / 'new.csv'}: permission denied in its "
                              f"folder {handin}")
    assert (handin / "model.h5").read_bytes() == b"the new model, longer than the old one"
    assert (handin / "table.csv").read_text() == "new\n"
    assert (handin / "kept.csv").read_bytes() == b"the student's old file"
    assert sorted(p.name for p in handin.iterdir()) == ["kept.csv", "model.h5", "table.csv"]
    assert all(path.stat().st_mode & 0o777 == 0o666 for path in handin.iterdir())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["handin"]   # nothing left aside


def test_a_file_name_with_a_line_break_is_said_on_one_line_with_a_command_that_names_it(
        tmp_path, monkeypatch):
    """WriteProtectedError, FolderNotWritableError and NoRoomError (and the command line's
    --out lines) printed a name holding a line break as is: two lines, and a `chmod u+w`
    split in two. The name is shown escaped, the command to paste as bash's $'...' word."""
    import errno as errors

    from dlcore.io import FolderNotWritableError, NoRoomError, WriteProtectedError
    folder = tmp_path / "runs\nold"
    folder.mkdir()
    name = folder / "model\n.h5"
    for error in (WriteProtectedError(name), FolderNotWritableError(name, folder, errors.EACCES),
                  NoRoomError(name, errors.ENOSPC)):
        assert "\n" not in str(error) and repr(str(name)) in str(error)

    def pasted(line):   # what the shell makes of the file's name in the line's chmod u+w
        word = re.search(r"\(chmod u\+w (.+?)\)(?: \(see '|\s*$)", line).group(1)
        return subprocess.run(["bash", "-c", f"printf %s {word}"], capture_output=True,
                              text=True, check=True).stdout
    assert pasted(str(WriteProtectedError(name))) == str(name)
    protected = (str(name), str(folder / "model.h5"))   # the latter: task1's own model file
    for path in protected:
        Path(path).write_bytes(b"the user's own model")
    real_access = os.access
    # root may write any file: the system's answer for a student (chmod 444)
    monkeypatch.setattr(os, "access", lambda path, mode, **options: (
        os.fspath(path) not in protected and real_access(path, mode, **options)))
    with pytest.raises(WriteProtectedError) as caught, atomic_open(name, "w"):
        pass
    assert "\n" not in str(caught.value)
    result = CliRunner().invoke(main, ["homework", "task1", "--epochs", "1", "--backend", "cpu",
                                       "--out", str(folder)])
    assert result.exit_code == 2, result.output
    line = result.stderr.split("dlcore: error: ", 1)[1]
    assert "\n" not in line.rstrip("\n") and pasted(line) == str(folder / "model.h5")


def test_atomic_open_refuses_modes_that_are_not_a_new_file(tmp_path):
    with pytest.raises(ValueError, match="mode must be 'w' or 'wb'"), \
            atomic_open(tmp_path / "x", "a"):
        pass


def test_the_dataset_and_model_writers_are_the_same_helper():
    from dlcore import viz
    from dlcore.datasets import _atomic
    from dlcore.io import hdf5
    assert hdf5.atomic_output_path is atomic_output_path
    assert viz.atomic_output_path is atomic_output_path
    assert _atomic.atomic_open is atomic_open


def test_interrupted_model_save_keeps_the_previous_file(tmp_path, monkeypatch):
    import h5py
    rbm = dlcore.BernoulliRBM(n_hidden=3, epochs=0, backend="cpu").fit([[0.0, 1.0]] * 4)
    dlcore.save(rbm, tmp_path / "model.h5")
    before = (tmp_path / "model.h5").read_bytes()

    def interrupted(*arguments, **options):
        raise KeyboardInterrupt

    monkeypatch.setattr(h5py.File, "flush", interrupted)
    with pytest.raises(KeyboardInterrupt):
        dlcore.save(rbm, tmp_path / "model.h5")
    assert (tmp_path / "model.h5").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.h5"]


def _save_interrupted_at(step, target, number=None):
    """Write ``target`` with a real Ctrl-C (SIGINT) sent at the ``step``-th line the writer
    runs, its hold of signals' included (:class:`stepping.SignalAtLine`); whether it was
    interrupted. ``number``: another signal. The signals are handled as in a command (SIGTERM
    and SIGHUP by :func:`dlcore.interrupt_on_termination`: a ``Terminated``, a
    ``KeyboardInterrupt``), and each one's handler must be back as it was after."""
    from dlcore import termination
    from dlcore.termination import raise_terminated
    from stepping import SignalAtLine
    number = signal.SIGINT if number is None else number
    writer = sys.modules[atomic_open.__module__].__file__
    # the handlers as in a command: Python's own of Ctrl-C (pytest-xdist's workers ignore
    # SIGINT), the command line's of SIGTERM and SIGHUP
    held_signals = atomic_module._HELD_SIGNALS
    handlers = {held: signal.default_int_handler if held == signal.SIGINT else raise_terminated
                for held in held_signals}
    previous = {held: signal.signal(held, handler) for held, handler in handlers.items()}
    try:
        with SignalAtLine(step, number, files=[writer, termination.__file__]):
            try:
                with atomic_open(target) as stream:
                    stream.write("new")
            except KeyboardInterrupt:
                return True
        return False
    finally:
        # a signal as the hold was taken over left another signal's handler replaced by it
        # for good (a Ctrl-C swallowed for the rest of the process)
        assert {held: signal.getsignal(held) for held in held_signals} == handlers, step
        for held, handler in previous.items():
            signal.signal(held, handler)


@pytest.mark.parametrize("signal_name", [
    "SIGINT",
    # a dlcore command's SIGTERM (a cluster's time limit, kill) and SIGHUP are its Ctrl-C: a
    # SIGTERM between the temporary file's making and the try that removes it left it there
    pytest.param("SIGTERM", marks=pytest.mark.skipif(not hasattr(signal, "SIGTERM"),
                                                     reason="no SIGTERM")),
    pytest.param("SIGHUP", marks=pytest.mark.skipif(not hasattr(signal, "SIGHUP"),
                                                    reason="no SIGHUP"))])
def test_a_ctrl_c_at_any_step_of_a_save_leaves_no_temporary_file(tmp_path, signal_name):
    step = 0
    while True:
        step += 1
        folder = tmp_path / str(step)
        folder.mkdir()
        (folder / "model.txt").write_text("old")
        interrupted = _save_interrupted_at(step, folder / "model.txt",
                                           getattr(signal, signal_name))
        assert sorted(path.name for path in folder.iterdir()) == ["model.txt"], step
        assert (folder / "model.txt").read_text() in ("old", "new")
        if not interrupted:
            break
    assert step > 20   # the writer's every step was reached, and the last save completed
    assert (folder / "model.txt").read_text() == "new"


@pytest.fixture(scope="module")
def rbm_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("rbm")
    result = CliRunner().invoke(main, ["rbm", "train", "--digits", "0-1", "--hidden", "4",
                                       "--epochs", "1", "--backend", "cpu", "--out",
                                       str(folder)])
    assert result.exit_code == 0, result.output
    return folder / "model.h5"


@pytest.mark.parametrize("command", [
    ["rbm", "sample", "{model}", "--n", "2", "--steps", "1"],
    ["rbm", "reconstruct", "{model}", "--digits", "0-1", "--per-digit", "1"],
])
def test_an_image_out_with_another_suffix_is_a_usage_error(rbm_file, tmp_path, command):
    target = tmp_path / "pictures" / "x.jpg"
    arguments = [word.replace("{model}", str(rbm_file)) for word in command]
    result = CliRunner().invoke(main, [*arguments, "--out", str(target)])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "does not end in .png" in lines[0] and "x.png" in lines[0]
    assert not target.exists() and not target.parent.exists()


def test_dbn_sample_out_with_another_suffix_is_refused_before_loading(rbm_file, tmp_path):
    # an RBM file is no DBN: only a refusal while parsing the options gives exit code 2
    result = CliRunner().invoke(main, ["dbn", "sample", str(rbm_file),
                                       "--out", str(tmp_path / "samples.jpeg")])
    assert result.exit_code == 2, result.output
    assert "does not end in .png" in result.output


def test_a_png_out_in_upper_case_is_accepted(rbm_file, tmp_path):
    target = tmp_path / "S.PNG"
    result = CliRunner().invoke(main, ["rbm", "sample", str(rbm_file), "--n", "2", "--steps",
                                       "1", "--out", str(target)])
    assert result.exit_code == 0, result.output
    assert target.read_bytes().startswith(b"\x89PNG")


def test_a_command_failing_after_creating_out_leaves_no_empty_folder(tmp_path, monkeypatch):
    import dlcore.cli.rbm as rbm_commands

    def unreadable(*arguments, **options):
        raise OSError("the data set is unreadable")

    monkeypatch.setattr(rbm_commands, "train_rbm", unreadable)
    out = tmp_path / "new" / "run"
    result = CliRunner().invoke(main, ["rbm", "train", "--epochs", "1", "--out", str(out)])
    assert result.exit_code == 1, result.output
    assert not (tmp_path / "new").exists()


def test_a_failing_command_keeps_an_out_folder_that_existed(tmp_path, monkeypatch):
    import dlcore.cli.rbm as rbm_commands

    def unreadable(*arguments, **options):
        raise OSError("the data set is unreadable")

    monkeypatch.setattr(rbm_commands, "train_rbm", unreadable)
    result = CliRunner().invoke(main, ["rbm", "train", "--epochs", "1", "--out", str(tmp_path)])
    assert result.exit_code == 1
    assert tmp_path.is_dir()


# -- a write that finds no room: one line naming the file and the fix ------------------------
def _full_disk_in(folder):
    """An ``_fsync_file`` that fails as a full disk does for the files written in
    ``folder`` (every atomic write fsyncs its temporary file before the rename)."""
    import errno
    import os

    from dlcore.io import atomic as _atomic
    real_fsync = _atomic._fsync_file

    def fsync(path):
        if os.path.dirname(os.path.abspath(path)) == str(folder):
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(path)

    return fsync


def test_a_full_disk_names_the_file_not_the_temporary_and_leaves_the_previous_one(
        tmp_path, monkeypatch):
    from dlcore.io import NoRoomError
    from dlcore.io import atomic as _atomic
    (tmp_path / "table.csv").write_text("before\n")
    monkeypatch.setattr(_atomic, "_fsync_file", _full_disk_in(tmp_path))
    with pytest.raises(NoRoomError) as caught, atomic_open(tmp_path / "table.csv") as stream:
        stream.write("after\n")
    assert isinstance(caught.value, OSError) and caught.value.errno == 28
    assert str(caught.value) == (f"cannot write {tmp_path / 'table.csv'}: no space left on "
                                 f"device (errno 28); free space on its disk or write it to "
                                 f"another folder")
    assert (tmp_path / "table.csv").read_text() == "before\n"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["table.csv"]


def test_hdf5s_text_of_a_file_size_limit_becomes_one_line(tmp_path):
    """h5py reports ulimit -f at close as HDF5's text, without an errno attribute."""
    from dlcore.io import NoRoomError
    hdf5_text = ("Can't decrement id ref count (unable to extend file properly, errno = 27, "
                 "error message = 'File too large')")
    with pytest.raises(NoRoomError, match=r"model.h5: file too large \(errno 27\); raise the "
                                          r"file-size limit \(ulimit -f\)$"), \
            atomic_output_path(tmp_path / "model.h5"):
        raise RuntimeError(hdf5_text)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("error_number, reason", [
    (13, "permission denied"), (30, "read-only file system")])
def test_a_folder_that_takes_no_file_names_the_target_not_the_temporary(
        tmp_path, monkeypatch, error_number, reason):
    """dlcore.save, a ModelCheckpoint or `dlcore convert` into a folder one may not write in
    (or on a read-only disk): the system's error named the hidden temporary file,
    "[Errno 13] Permission denied: '.../.model.h5.tmp.1f3a9c2e'", and no fix."""
    import os

    import dlcore
    from dlcore.io import FolderNotWritableError
    from dlcore.io import atomic as _atomic
    real_open = os.open

    def refusing_open(path, flags, *arguments):
        if flags & os.O_CREAT and os.path.dirname(os.fspath(path)) == str(tmp_path):
            raise OSError(error_number, os.strerror(error_number), path)
        return real_open(path, flags, *arguments)

    model = dlcore.BernoulliRBM(n_hidden=2, epochs=1, backend="reference").fit(
        np.eye(4, dtype=np.float32))
    monkeypatch.setattr(_atomic.os, "open", refusing_open)
    with pytest.raises(FolderNotWritableError) as caught:
        dlcore.save(model, tmp_path / "model.h5")
    assert isinstance(caught.value, PermissionError) and caught.value.errno == error_number
    assert str(caught.value) == (f"cannot write {tmp_path / 'model.h5'}: {reason} in its "
                                 f"folder {tmp_path} (errno {error_number}); write it to a "
                                 f"folder you may write to")
    assert not list(tmp_path.iterdir())


def test_other_write_errors_pass_unchanged(tmp_path):
    with pytest.raises(PermissionError, match="denied"), atomic_output_path(tmp_path / "x"):
        raise PermissionError(13, "denied")


def test_a_trained_model_without_room_in_out_is_saved_elsewhere_and_named(tmp_path,
                                                                          monkeypatch):
    """rbm train on a full disk: one line naming model.h5 and the fix, and the trained model
    kept in the temporary folder (hours of training are not dropped)."""
    import tempfile

    from dlcore.io import atomic as _atomic
    out, spare = tmp_path / "out", tmp_path / "spare"
    out.mkdir()
    spare.mkdir()
    monkeypatch.setattr(_atomic, "_fsync_file", _full_disk_in(out))
    monkeypatch.setattr(tempfile, "tempdir", str(spare))
    result = CliRunner().invoke(main, ["rbm", "train", "--digits", "0-1", "--hidden", "4",
                                       "--epochs", "1", "--backend", "cpu", "--out", str(out)])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    rescued = next(spare.glob("dlcore-rescued-*/model.h5"))
    assert lines[-1] == (f"dlcore: error: cannot write {out / 'model.h5'}: no space left on "
                         f"device (errno 28); free space or choose another --out (the trained "
                         f"model was saved to {rescued} instead: move it there)")
    assert dlcore.load(rescued).W.shape == (784, 4)
    assert not list(out.iterdir())


def test_task1_on_a_full_disk_says_which_complete_files_it_wrote(tmp_path, monkeypatch):
    from dlcore.io import atomic as _atomic
    monkeypatch.setattr(_atomic, "_fsync_file", lambda path, real=_atomic._fsync_file: (
        _full_disk_in(tmp_path)(path) if "training_curve" in str(path) else real(path)))
    result = CliRunner().invoke(main, ["homework", "task1", "--hidden", "4", "--epochs", "1",
                                       "--backend", "cpu", "--out", str(tmp_path)])
    assert result.exit_code == 1
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith(f"dlcore: error: cannot write {tmp_path / 'training_curve.png'}: "
                           f"no space left on device (errno 28); free space or choose another "
                           f"--out; this run wrote ")
    written = sorted(path.name for path in tmp_path.iterdir())
    assert line.endswith(f"this run wrote {', '.join(written)} in {tmp_path} before, which "
                         f"are complete")
    assert "model.h5" in written and "training_curve.png" not in written


# -- one run per --out folder ----------------------------------------------------------------
def test_a_second_run_with_the_same_out_is_refused_in_one_line_naming_the_first(tmp_path):
    """Two runs given one --out both exited 0 and left model.h5 of one and filters.png of
    the other: the second is refused while the first holds the folder's lock."""
    from dlcore.io.atomic import LOCK_FILE_NAME, lock_folder
    first = lock_folder(tmp_path, "pid 4242: dlcore rbm train --hidden 64")
    command = ["rbm", "train", "--digits", "0-1", "--hidden", "4", "--epochs", "1",
               "--backend", "cpu", "--out", str(tmp_path)]
    try:
        refused = CliRunner().invoke(main, command)
    finally:
        first.release()
    assert refused.exit_code == 1
    lines = refused.stderr.strip().splitlines()
    assert lines == [f"dlcore: error: --out {tmp_path} is in use by another dlcore run (pid "
                     f"4242: dlcore rbm train --hidden 64): wait for it to finish, or choose "
                     f"another --out"]
    assert not (tmp_path / "model.h5").exists()
    result = CliRunner().invoke(main, command)            # the folder is free again
    assert result.exit_code == 0, result.output
    assert not (tmp_path / LOCK_FILE_NAME).exists()       # and left without the lock file


def test_a_run_that_crashed_does_not_block_its_folder(tmp_path):
    """The lock is the system's: a killed run (os._exit, no clean-up) frees it, though its
    lock file stays."""
    import subprocess
    import sys

    from dlcore.io.atomic import LOCK_FILE_NAME, lock_folder
    code = ("import os, sys; from dlcore.io.atomic import lock_folder; "
            "lock_folder(sys.argv[1], 'pid 1: crashed'); os._exit(3)")
    crashed = subprocess.run([sys.executable, "-c", code, str(tmp_path)], timeout=120,
                             check=False)
    assert crashed.returncode == 3 and (tmp_path / LOCK_FILE_NAME).exists()
    lock = lock_folder(tmp_path, "pid 2: the next run")
    assert (tmp_path / LOCK_FILE_NAME).read_text() == "pid 2: the next run"
    lock.release()
    assert not (tmp_path / LOCK_FILE_NAME).exists()


@pytest.mark.parametrize("failure", [errno.EIO, errno.ENOSPC], ids=["EIO", "ENOSPC"])
def test_a_copy_in_place_that_fails_half_way_leaves_the_previous_file_or_both_versions(
        tmp_path, monkeypatch, failure):
    """A file written in place (a hand-in folder, where no new file may be made) whose copy
    failed half-way (an I/O error; a full disk on a file system that reserves no room, NFS)
    was left half new, half old, and both whole versions were deleted with the temporary
    folder. The previous version is put back; where that fails too, both are kept and the
    error's one line names them."""
    import dlcore.io.atomic as atomic

    def no_new_file_here(directory, basename):   # the 555 hand-in folder, as root may not see it
        raise PermissionError(errno.EACCES, "Permission denied")
    monkeypatch.setattr(atomic, "_create_temporary_file", no_new_file_here)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "temporary"))
    (tmp_path / "temporary").mkdir()
    real_write, writes = os.write, []

    def failing_after_one_chunk(descriptor, data):
        writes.append(len(data))
        if len(writes) > 1 and (len(writes) == 2 or failing_for_good):
            raise OSError(failure, os.strerror(failure))
        return real_write(descriptor, data)
    monkeypatch.setattr(os, "write", failing_after_one_chunk)
    monkeypatch.setattr(os, "posix_fallocate", lambda *arguments: (_ for _ in ()).throw(
        OSError(errno.EOPNOTSUPP, "Operation not supported")), raising=False)
    old, new = b"o" * (3 << 20), b"n" * (3 << 20)
    model = tmp_path / "model.h5"
    model.write_bytes(old)

    failing_for_good = False   # the copy fails once: the previous version goes back
    with pytest.raises(OSError) as caught, atomic_output_path(model) as temporary:
        Path(temporary).write_bytes(new)
    assert caught.value.errno == failure
    assert model.read_bytes() == old
    assert list((tmp_path / "temporary").iterdir()) == []

    failing_for_good, writes[:] = True, []   # putting it back fails too: both are kept
    with pytest.raises(atomic.HalfWrittenError) as caught, \
            atomic_output_path(model) as temporary:
        Path(temporary).write_bytes(new)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"cannot write {model}: ")
    assert Path(caught.value.previous).read_bytes() == old
    assert Path(caught.value.new).read_bytes() == new
    assert f"cp {caught.value.previous} {model}" in message


def test_a_file_written_in_place_blames_a_full_or_missing_temporary_folder_not_its_disk(
        tmp_path, monkeypatch):
    """A file written in place is made whole in the temporary folder first. A full TMPDIR
    (a cluster's small /tmp) said "cannot write handin/model.h5: no space left on device ...;
    free space on its disk", a disk with room, and a TMPDIR that is no folder gave Python's
    "[Errno 2] No such file or directory: '/.../dlcore-write-...'". Both now name the
    temporary folder and TMPDIR, and the file is as it was."""
    import dlcore.io.atomic as atomic

    def no_new_file_here(directory, basename):   # the 555 hand-in folder, as root may not see it
        raise PermissionError(errno.EACCES, "Permission denied")
    monkeypatch.setattr(atomic, "_create_temporary_file", no_new_file_here)
    temporary_folder = tmp_path / "temporary"
    temporary_folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temporary_folder))
    model = tmp_path / "model.h5"
    model.write_bytes(b"the student's model")
    with pytest.raises(dlcore.io.TemporaryFolderError) as caught, \
            atomic_output_path(model) as temporary:
        Path(temporary).write_bytes(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")   # as h5py's flush in a full TMPDIR
    message = str(caught.value)
    assert message.startswith(f"cannot write {model}: ") and "\n" not in message
    assert f"temporary folder {temporary_folder} (TMPDIR)" in message
    assert "no space left on device" in message and "free space there" in message
    assert caught.value.errno == errno.ENOSPC
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "no-such-folder"))
    with pytest.raises(dlcore.io.TemporaryFolderError) as caught, atomic_open(model, "w"):
        pass
    assert "set TMPDIR to a folder you can write to" in str(caught.value)
    assert model.read_bytes() == b"the student's model"
    assert list(temporary_folder.iterdir()) == []


@pytest.mark.skipif(not hasattr(os, "mkfifo") or not os.path.isdir("/proc/self/fd"),
                    reason="named pipes and /proc/self/fd are Linux's")
def test_a_pipe_or_a_process_descriptor_is_written_as_open_writes_it_not_replaced(tmp_path):
    """A named pipe (a reader waiting on it) was replaced with a file of the output, the
    reader left waiting for ever, as root /dev/null too; /dev/stdout piped (a link to
    /proc/<pid>/fd/1) said "No such file or directory: '/proc/<pid>/fd/.pipe:[...].tmp...'",
    and redirected to a file replaced that file. They are written as open() writes them."""
    import threading
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    received = []
    reader = threading.Thread(target=lambda: received.append(pipe.read_bytes()), daemon=True)
    reader.start()
    with atomic_open(pipe, "wb") as stream:
        stream.write(b"the table")
    reader.join(timeout=10)
    assert received == [b"the table"] and pipe.is_fifo()
    read_end, write_end = os.pipe()
    try:
        standard_output = tmp_path / "stdout"   # as /dev/stdout -> /proc/self/fd/1
        standard_output.symlink_to(f"/proc/self/fd/{write_end}")
        with atomic_open(standard_output, "w") as stream:
            stream.write("the csv\n")
        assert os.read(read_end, 100) == b"the csv\n"
    finally:
        os.close(read_end)
        os.close(write_end)
    redirected = tmp_path / "log.txt"   # dlcore ... --out /dev/stdout > log.txt
    with open(redirected, "w") as log:
        (tmp_path / "stdout2").symlink_to(f"/proc/self/fd/{log.fileno()}")
        with atomic_open(tmp_path / "stdout2", "w") as stream:
            stream.write("the csv\n")
        log.write("what follows\n")   # the descriptor's file is still the one on disk
    assert redirected.read_text() == "the csv\nwhat follows\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log.txt", "pipe", "stdout", "stdout2"]


_WRITE_IN_A_STICKY_FOLDER = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("atomic", sys.argv[2])
atomic = importlib.util.module_from_spec(spec)
spec.loader.exec_module(atomic)
with atomic.atomic_open(sys.argv[1], "w") as stream:
    stream.write("the student's results\\n")
"""


def test_another_users_writable_file_in_a_sticky_folder_is_written_in_place(tmp_path):
    """A sticky folder (mode 1777, as /tmp and a course's shared folder are) lets no user
    rename over another user's file: a teacher's results.csv of mode 666 there, which
    open(path, "w") writes, gave "[Errno 1] Operation not permitted:
    '.../.results.csv.tmp.1dffb54a' -> 'results.csv'". It is written in place."""
    from test_cli_outputs import without_root_rights
    prefix = without_root_rights()
    if not prefix:
        pytest.skip("needs root to give the file to another user")
    shared = tmp_path / "shared"
    shared.mkdir()
    results = shared / "results.csv"
    results.write_text("the teacher's template, longer than the results\n")
    for path in (shared, results):
        os.chown(path, 1000, 1000)
    results.chmod(0o666)
    shared.chmod(0o1777)
    result = subprocess.run([*prefix, sys.executable, "-c", _WRITE_IN_A_STICKY_FOLDER,
                             str(results), str(THE_WRITER)], capture_output=True, text=True,
                            timeout=120, env=dict(os.environ, TMPDIR=str(tmp_path)))
    assert result.returncode == 0, result.stderr
    assert results.read_text() == "the student's results\n"
    assert results.stat().st_uid == 1000 and results.stat().st_mode & 0o777 == 0o666
    assert sorted(p.name for p in shared.iterdir()) == ["results.csv"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shared"]


def test_a_name_as_long_as_the_system_allows_is_written(tmp_path):
    """A file's name may have 255 bytes, as open() writes it; its temporary file's name,
    ``.<name>.tmp.<8 hex>``, was 14 bytes longer: a name of 242 bytes or more gave Python's
    "[Errno 36] File name too long: '.../.aaaa....tmp.1a2b3c4d'", naming the hidden file."""
    for name in ("a" * 251 + ".csv", "é" * 126 + ".h5"):   # 255 bytes in UTF-8 each
        with atomic_open(tmp_path / name, "w") as stream:
            stream.write("written\n")
        assert (tmp_path / name).read_text() == "written\n"
    assert len(list(tmp_path.iterdir())) == 2


def test_a_link_to_a_file_on_a_read_only_disk_names_the_disk_s_folder(tmp_path, monkeypatch):
    """`best.h5 -> /mnt/handins/model.h5` on a read-only mount: the refusal named the link's
    own folder, which is writable, as the folder on the read-only disk."""
    import dlcore.io.atomic as atomic
    mounted, links = tmp_path / "mounted", tmp_path / "links"
    mounted.mkdir()
    links.mkdir()
    (mounted / "model.h5").write_bytes(b"the model")
    (links / "best.h5").symlink_to(mounted / "model.h5")
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode, **options: (
        not os.path.realpath(path).startswith(str(mounted))
        and real_access(path, mode, **options)))
    monkeypatch.setattr(atomic, "_on_read_only_file_system",
                        lambda path: os.path.realpath(path).startswith(str(mounted)))
    with pytest.raises(dlcore.io.FolderNotWritableError) as caught, \
            atomic_open(links / "best.h5", "wb"):
        pass
    assert caught.value.folder == str(mounted)
    assert (mounted / "model.h5").read_bytes() == b"the model"


def test_a_refused_rename_outside_a_sticky_folder_leaves_the_file_and_says_so_in_one_line(
        tmp_path, monkeypatch):
    """Windows refuses to rename over a file another program holds open (a CSV open in a
    spreadsheet, a model a notebook reads): PermissionError, the file writable. That was
    taken for a sticky folder and the file written in place under the other program, on
    Windows a traceback of "module 'os' has no attribute 'pwrite'". Only a sticky folder's
    refusal writes in place; elsewhere the file is left as it was, nothing left beside it,
    and the one line names the file."""
    results = tmp_path / "results.csv"
    results.write_text("the previous results\n")

    def held_open(source, destination):
        raise PermissionError(errno.EACCES, "Access is denied", os.fspath(source), None,
                              os.fspath(destination))
    monkeypatch.setattr(os, "replace", held_open)
    monkeypatch.delattr(os, "pwrite", raising=False)   # as Windows has none
    with pytest.raises(PermissionError) as caught, atomic_open(results, "w") as stream:
        stream.write("the new results\n")
    message = str(caught.value)
    assert "\n" not in message and f"cannot write {results}: " in message
    assert ".tmp." not in message and caught.value.errno == errno.EACCES
    assert results.read_text() == "the previous results\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.csv"]


@pytest.mark.skipif(not os.path.exists(os.devnull) or os.name != "posix",
                    reason="a device to write into")
def test_a_device_whose_content_finds_no_temporary_folder_is_not_said_to_be_written_in_place(
        tmp_path, monkeypatch):
    """A pipe, a device or /dev/stdout is written into once its content is whole in the
    temporary folder. A TMPDIR that was full or no folder said "it is written in place (its
    folder lets no new file replace it), its versions kept meanwhile ...; the file is as it
    was", true of a hand-in folder's file, not of /dev/stdout. The line says what it is."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "no-such-folder"))
    with pytest.raises(dlcore.io.TemporaryFolderError) as caught, atomic_open(os.devnull):
        pass
    message = str(caught.value)
    assert message.startswith(f"cannot write {os.devnull}: ") and "\n" not in message
    assert "in place" not in message and "versions" not in message
    assert f"{tmp_path / 'no-such-folder'} (TMPDIR)" in message
    temporary_folder = tmp_path / "temporary"
    temporary_folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temporary_folder))
    with pytest.raises(dlcore.io.TemporaryFolderError) as caught, \
            atomic_output_path(os.devnull) as temporary:
        Path(temporary).write_bytes(b"half a figure")
        raise OSError(errno.ENOSPC, "No space left on device")   # as savefig in a full TMPDIR
    assert "in place" not in str(caught.value) and "free space there" in str(caught.value)
    with pytest.raises(dlcore.io.NoRoomError) as caught, \
            atomic_output_path(os.devnull) as temporary:
        raise OSError(errno.EFBIG, "File too large")   # ulimit -f
    assert caught.value.size_limit and str(caught.value).startswith(f"cannot write {os.devnull}")
    assert list(temporary_folder.iterdir()) == []


def test_a_file_written_in_place_needs_no_call_that_only_posix_has(tmp_path, monkeypatch):
    """A writable file in a folder that takes no new file (a Windows share that lets students
    write their files, not make new ones) is written in place. The copy used os.pwrite, which
    Windows lacks: "module 'os' has no attribute 'pwrite'" once the new version was whole.
    It uses the calls every system has (and a binary descriptor, which Windows' is not
    unless asked)."""
    import dlcore.io.atomic as atomic

    def no_new_file_here(directory, basename):   # the hand-in folder, as root may not see it
        raise PermissionError(errno.EACCES, "Permission denied")
    monkeypatch.setattr(atomic, "_create_temporary_file", no_new_file_here)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "temporary"))
    (tmp_path / "temporary").mkdir()
    for posix_only in ("pwrite", "posix_fallocate"):
        monkeypatch.delattr(os, posix_only, raising=False)
    model = tmp_path / "model.h5"
    model.write_bytes(b"the student's model, longer than the new one\n")
    with atomic_output_path(model) as temporary:
        Path(temporary).write_bytes(b"the new\nmodel\n")
    assert model.read_bytes() == b"the new\nmodel\n"
    assert list((tmp_path / "temporary").iterdir()) == []


def test_a_file_in_place_that_could_not_be_opened_is_not_said_to_be_half_written(
        tmp_path, monkeypatch):
    """A file written in place that the copy could not even open (on Windows, a hand-in
    another program holds open without letting others write) was reported as
    HalfWrittenError, "it is half-written: its previous version is kept in ...", though not a
    byte had changed, and both copies were left in the temporary folder. The file is as it
    was: the error is the system's, and nothing is left aside."""
    import dlcore.io.atomic as atomic

    def no_new_file_here(directory, basename):   # the hand-in folder, as root may not see it
        raise PermissionError(errno.EACCES, "Permission denied")
    monkeypatch.setattr(atomic, "_create_temporary_file", no_new_file_here)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "temporary"))
    (tmp_path / "temporary").mkdir()
    model = tmp_path / "model.h5"
    model.write_bytes(b"the student's model")
    real_open = os.open

    def held_by_another_program(path, flags, *arguments, **options):
        if os.fspath(path) == os.fspath(model) and flags & os.O_WRONLY:
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))
        return real_open(path, flags, *arguments, **options)
    monkeypatch.setattr(os, "open", held_by_another_program)
    with pytest.raises(PermissionError) as caught, atomic_output_path(model) as temporary:
        Path(temporary).write_bytes(b"the new model")
    assert not isinstance(caught.value, atomic.HalfWrittenError)
    assert "half-written" not in str(caught.value) and str(model) in str(caught.value)
    assert model.read_bytes() == b"the student's model"
    assert list((tmp_path / "temporary").iterdir()) == []


#: A writer of another process: it loads dlcore/io/atomic.py alone (it imports no more than
#: the standard library: a start of a fraction of a second), writes ``argv[2]`` with
#: atomic_open, says so and waits, inside the write, until its input closes.
_WRITER_IN_ANOTHER_PROCESS = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("atomic", sys.argv[1])
atomic = importlib.util.module_from_spec(spec)
spec.loader.exec_module(atomic)
with atomic.atomic_open(sys.argv[2]) as stream:
    stream.write("the other's")
    print("writing", flush=True)
    sys.stdin.read()
"""
OFD_LOCKS_ONLY = pytest.mark.skipif(not atomic_module._OFD_LOCKS,
                                    reason="open-file-description locks are Linux's")


def writer_in_another_process(target):
    """A process inside atomic_open(target), its temporary file and marker made: close its
    stdin to let it end, or kill it."""
    writer = subprocess.Popen([sys.executable, "-c", _WRITER_IN_ANOTHER_PROCESS,
                               str(THE_WRITER), str(target)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    assert writer.stdout.readline() == "writing\n"
    return writer


def hidden_files(folder):
    return sorted(path.name for path in Path(folder).iterdir() if path.name.startswith("."))


@OFD_LOCKS_ONLY
def test_a_file_another_process_is_writing_at_the_same_time_is_said_in_one_line(tmp_path):
    # two programs saving one model at once: the second silently replaced the first's
    from dlcore.io.atomic import SimultaneousWriteWarning
    stale = tmp_path / ".model.h5.tmp.0badc0de.writing"   # a killed writer's: no lock
    stale.write_text("")
    with warnings_recorded() as caught, atomic_open(tmp_path / "model.h5") as stream:
        stream.write("alone")
        assert len(list(tmp_path.glob(".model.h5.tmp.*.writing"))) == 2   # its own too
    assert caught == []
    stale.unlink()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["model.h5"]
    other = writer_in_another_process(tmp_path / "model.h5")
    try:
        with pytest.warns(SimultaneousWriteWarning) as caught, \
                atomic_open(tmp_path / "model.h5") as stream:
            stream.write("second")
        assert (tmp_path / "model.h5").read_text() == "second"
    finally:
        other.communicate("")
    (message,) = [str(warning.message) for warning in caught]
    assert message.startswith(f"{tmp_path / 'model.h5'} was being written by another process "
                              f"at the same time") and "\n" not in message
    assert (tmp_path / "model.h5").read_text() == "the other's"


@OFD_LOCKS_ONLY
def test_the_leftovers_of_a_killed_writer_are_removed_by_the_next_save(tmp_path):
    """A save killed half-way (SIGKILL, a power cut) left its hidden temporary file and its
    marker beside the model for ever, however often the model was saved again. The next
    save removes those of writers provably dead (their marker's lock free: the system frees
    it when a process ends, however it ends), never a live writer's."""
    model = tmp_path / "model.h5"
    live = writer_in_another_process(model)
    try:
        lives = hidden_files(tmp_path)   # its temporary file and marker
        killed = writer_in_another_process(model)
        killed.kill()
        killed.wait()
        # an older dlcore's marker names no writer: a dead one's once a day unchanged
        old = tmp_path / ".model.h5.tmp.0ddba11c"
        for path in (old, Path(f"{old}.writing")):
            path.write_text("")
            os.utime(path, (0, 0))
        assert len(hidden_files(tmp_path)) == 6
        with warnings_recorded(), atomic_open(model) as stream:
            stream.write("saved again")
        assert hidden_files(tmp_path) == lives
        assert model.read_text() == "saved again"
    finally:
        live.communicate("")
    assert hidden_files(tmp_path) == []


@OFD_LOCKS_ONLY
def test_another_machines_writer_is_not_taken_for_dead_by_its_free_lock(tmp_path, monkeypatch):
    """On a folder shared by two machines whose locks each sees alone (NFS mounted nolock,
    sshfs), a save on one found the other's live save's marker free and removed its
    temporary file: that save failed. A free marker of another machine's (or of the boot
    before a power cut) is a dead writer's once it and its file are a day unchanged."""
    model = tmp_path / "model.h5"
    others = atomic_module._create_temporary_file(str(tmp_path), "model.h5")
    monkeypatch.setattr(atomic_module, "_this_boot", lambda: "another machine's boot",
                        raising=False)
    other = atomic_module._mark_writing(others, "model.h5")
    monkeypatch.undo()
    assert other, "no marker made"
    os.close(other[0])   # its lock, that machine's, is not seen here
    assert len(hidden_files(tmp_path)) == 2
    with warnings_recorded() as caught, atomic_open(model) as stream:
        stream.write("mine")
    assert caught == []
    assert sorted(hidden_files(tmp_path)) == sorted(
        os.path.basename(path) for path in (others, other[1]))
    two_days_ago = time.time() - 2 * 24 * 3600
    for path in (others, other[1]):
        os.utime(path, (two_days_ago, two_days_ago))
    with warnings_recorded(), atomic_open(model) as stream:
        stream.write("again")
    assert hidden_files(tmp_path) == []


@OFD_LOCKS_ONLY
def test_a_writer_holds_its_marker_until_its_file_is_in_place(tmp_path, monkeypatch):
    # its marker was removed before the rename: another writer's look in that moment found
    # the temporary file without a live marker, a dead writer's, and could remove it
    real_replace, beside = os.replace, []

    def replace(source, target):
        beside.append(hidden_files(tmp_path))
        return real_replace(source, target)
    monkeypatch.setattr(os, "replace", replace)
    with atomic_open(tmp_path / "model.h5") as stream:
        stream.write("mine")
    ((temporary, marker),) = beside
    assert marker == f"{temporary}.writing"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["model.h5"]


@OFD_LOCKS_ONLY
@pytest.mark.parametrize("other_name", ["model.h5.tmp.b", "a" * 240 + "_two.h5"],
                         ids=["a name that begins like it", "a long name cut alike"])
def test_a_file_whose_name_only_begins_like_the_others_is_not_said_written_at_once(
        tmp_path, other_name):
    """The warning "was being written by another process at the same time" was given for
    model.h5 while model.h5.tmp.b was written (its marker's name begins like model.h5's),
    and for two long names whose temporary files' names are cut alike."""
    target = tmp_path / ("model.h5" if other_name.startswith("model") else "a" * 240 + "_one.h5")
    others = atomic_module._create_temporary_file(str(tmp_path), other_name)
    other = atomic_module._mark_writing(others, other_name)
    try:
        with warnings_recorded() as caught, atomic_open(target) as stream:
            stream.write("mine")
    finally:
        atomic_module._unmark_writing(other)
        os.remove(others)
    assert caught == []
    assert target.read_text() == "mine"


@contextlib.contextmanager
def writer_in_another_thread(target):
    """A thread inside atomic_open(target) until the block ends."""
    import threading
    started, ending = threading.Event(), threading.Event()

    def write():
        with atomic_open(target) as stream:
            stream.write("the thread's")
            started.set()
            ending.wait(10)
    thread = threading.Thread(target=write)
    thread.start()
    try:
        assert started.wait(10)
        yield thread
    finally:
        ending.set()
        thread.join()


@OFD_LOCKS_ONLY
def test_a_file_another_thread_is_writing_is_said_to_be_a_threads(tmp_path):
    # two threads of one program saving one file were said to be "another process"
    from dlcore.io.atomic import SimultaneousWriteWarning
    with writer_in_another_thread(tmp_path / "model.h5"), \
            pytest.warns(SimultaneousWriteWarning) as caught, \
            atomic_open(tmp_path / "model.h5") as stream:
        stream.write("mine")
    (message,) = [str(warning.message) for warning in caught]
    assert message.startswith(f"{tmp_path / 'model.h5'} was being written by another thread "
                              f"of this process at the same time: ")


@OFD_LOCKS_ONLY
def test_the_warning_as_an_error_comes_once_the_file_is_saved(tmp_path):
    """Under python -W error the warning of a simultaneous write became an exception raised
    before the rename: the save it warned about was lost (the file as it was). It is raised
    once the file is whole and in place, nothing left beside it."""
    from dlcore.io.atomic import SimultaneousWriteWarning
    model = tmp_path / "model.h5"
    model.write_text("before")
    with writer_in_another_thread(model):
        with warnings.catch_warnings():
            warnings.simplefilter("error", SimultaneousWriteWarning)
            with pytest.raises(SimultaneousWriteWarning), atomic_open(model) as stream:
                stream.write("mine")
        assert model.read_text() == "mine"
        assert len(hidden_files(tmp_path)) == 2   # the thread's own, still writing
    assert hidden_files(tmp_path) == []


@OFD_LOCKS_ONLY
def test_a_fifo_named_like_a_marker_does_not_hang_the_save(tmp_path):
    # a hostile file beside the model, a FIFO named like another writer's marker: the save's
    # look at the folder opened it, which waits for a writer of the FIFO for ever
    import threading
    fifo = tmp_path / ".model.h5.tmp.0badc0de.writing"
    os.mkfifo(fifo)
    saved = threading.Event()

    def save():
        with atomic_open(tmp_path / "model.h5") as stream:
            stream.write("mine")
        saved.set()
    threading.Thread(target=save, daemon=True).start()
    try:
        assert saved.wait(10), "the save hangs"
    finally:   # lets an open that waits go on
        with contextlib.suppress(OSError):
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    assert (tmp_path / "model.h5").read_text() == "mine"


@OFD_LOCKS_ONLY
def test_a_marker_its_writer_removes_during_the_look_is_not_a_dead_writers(
        tmp_path, monkeypatch):
    """A writer ending removes its marker, then frees its lock. Another save's look that had
    opened the marker a moment before found its lock free, took its writer for dead and
    removed its temporary file: the new version a HalfWrittenError keeps and names."""
    kept = tmp_path / ".model.h5.tmp.0badc0de"
    kept.write_text("the new version")
    ending = atomic_module._mark_writing(str(kept), "model.h5")
    assert ending, "no marker made"
    real_open = os.open

    def open_then_the_writer_ends(path, flags, *arguments, **options):
        descriptor = real_open(path, flags, *arguments, **options)
        if os.fspath(path) == f"{kept}.writing":
            atomic_module._unmark_writing(ending)
        return descriptor
    monkeypatch.setattr(os, "open", open_then_the_writer_ends)
    with warnings_recorded(), atomic_open(tmp_path / "model.h5") as stream:
        stream.write("mine")
    assert not ending, "the look never opened the marker"
    assert kept.read_text() == "the new version"


@pytest.mark.parametrize("interrupted", [".tmp.", ".writing"])
def test_a_second_ctrl_c_during_the_clean_up_of_the_first_leaves_nothing(
        tmp_path, monkeypatch, interrupted):
    """A Ctrl-C during a save, then a second one while dlcore removed the temporary file
    (or its marker): that file stayed beside the model. The clean-up ends first."""
    model = tmp_path / "model.h5"
    model.write_text("before")
    real_remove, landed = os.remove, []

    def second_ctrl_c(path, *arguments, **options):
        if interrupted in os.fspath(path) and not landed:
            landed.append(path)
            raise KeyboardInterrupt
        return real_remove(path, *arguments, **options)
    monkeypatch.setattr(os, "remove", second_ctrl_c)
    if interrupted == ".writing" and not atomic_module._OFD_LOCKS:
        pytest.skip("no marker without open-file-description locks")
    with pytest.raises(KeyboardInterrupt), atomic_open(model) as stream:
        stream.write("half")
        raise KeyboardInterrupt
    assert landed, "no second Ctrl-C came"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["model.h5"]
    assert model.read_text() == "before"


@contextlib.contextmanager
def warnings_recorded():
    import warnings
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield caught


def test_a_name_ending_in_a_slash_is_refused_before_the_work(tmp_path):
    # the writer ran, then the rename said "[Errno 20] Not a directory: '.../..tmp.c5f95c17'"
    from dlcore.io.atomic import UnwritableNameError
    with pytest.raises(UnwritableNameError) as caught, \
            atomic_output_path(f"{tmp_path / 'sub'}{os.sep}"):
        pytest.fail("the writer ran")
    assert str(caught.value) == (f"cannot write {tmp_path / 'sub'}{os.sep}: a name ending in "
                                 f"'{os.sep}' names a folder, not a file; add the file's name "
                                 f"after the '{os.sep}'")
    assert list(tmp_path.iterdir()) == []


def test_a_png_out_ending_in_a_slash_is_refused_in_one_line(tmp_path):
    result = CliRunner().invoke(main, ["rbm", "sample", "--out", f"{tmp_path / 'figures'}/",
                                       str(tmp_path / "missing.h5")])
    assert result.exit_code == 2
    assert "a name ending in '/' names a folder, not a file" in result.output


def test_a_converted_file_named_with_a_slash_is_refused_in_one_line(tmp_path, rbm_file):
    result = CliRunner().invoke(main, ["convert", str(rbm_file), f"{tmp_path / 'out'}/",
                                       "--to", "keras"])
    assert result.exit_code == 2, result.output
    assert "a name ending in '/' names a folder, not a file" in result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(not atomic_module._OFD_LOCKS,
                    reason="open-file-description locks are Linux's")
def test_a_long_name_another_process_is_writing_is_said_too(tmp_path):
    # a name of 234 to 255 bytes: its marker, <temporary>.writing, was too long to be made,
    # and two programs saving it at once said nothing
    from dlcore.io.atomic import SimultaneousWriteWarning
    target = tmp_path / ("a" * 245 + ".h5")
    others = atomic_module._create_temporary_file(str(tmp_path), target.name)
    other = atomic_module._mark_writing(others)
    try:
        assert other, "no marker made"
        with pytest.warns(SimultaneousWriteWarning), atomic_open(target) as stream:
            stream.write("second")
    finally:
        atomic_module._unmark_writing(other)
        os.remove(others)
    assert sorted(path.name for path in tmp_path.iterdir()) == [target.name]


def test_a_long_name_in_letters_of_two_bytes_is_not_refused_on_windows(tmp_path, monkeypatch):
    # Windows (no os.pathconf) limits a name to 255 UTF-16 characters, not 255 UTF-8 bytes:
    # a Cyrillic name of 200 letters (400 bytes) was refused there before the work
    from dlcore.io.atomic import UnwritableNameError, refuse_unwritable_name
    monkeypatch.delattr(os, "pathconf", raising=False)
    refuse_unwritable_name(tmp_path / ("д" * 200 + ".h5"))
    with pytest.raises(UnwritableNameError) as caught:
        refuse_unwritable_name(tmp_path / ("д" * 260 + ".h5"))
    assert str(caught.value).endswith(": its name is 263 characters, more than the 255 a file "
                                      "name may have there; give a shorter name")
