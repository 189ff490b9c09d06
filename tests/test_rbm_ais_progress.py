"""AIS progress decides "terminal or not" as the training progress does (dlcore.callbacks).

Oracle: a stream without ``isatty`` (what some notebook and service wrappers put in
``sys.stderr``) is no terminal for the training progress bar; AIS must then print a line
every 10 % instead of failing, and rewrite one line on a stream that is a terminal."""
import numpy as np

from dlcore.rbm import ais_log_partition


class Stream:
    """A text stream with ``write`` and ``flush`` only, or claiming to be a terminal."""

    def __init__(self, terminal=None):
        self.text = ""
        if terminal is not None:
            self.isatty = lambda: terminal

    def write(self, text):
        self.text += text

    def flush(self):
        pass


def run_ais(stream, monkeypatch):
    monkeypatch.setattr("sys.stderr", stream)
    rs = np.random.default_rng(3)
    W, b, c = rs.normal(0, 0.5, (6, 3)), rs.normal(0, 1, 6), rs.normal(0, 1, 3)
    ais_log_partition(W, b, c, n_runs=4, n_temperatures=200, verbose=True)
    return stream.text


def test_a_stream_without_isatty_gets_a_line_every_tenth(monkeypatch):
    text = run_ais(Stream(), monkeypatch)
    lines = text.splitlines()
    assert "\r" not in text and 10 <= len(lines) <= 11
    assert lines[-1].startswith("AIS: 100% (200/200 temperatures")


def test_a_terminal_gets_one_rewritten_line(monkeypatch):
    text = run_ais(Stream(terminal=True), monkeypatch)
    assert text.count("\n") == 1 and text.count("\r") > 10
    assert text.rstrip("\n").rsplit("\r", 1)[-1].startswith("AIS: 100% (200/200")
