"""Finding and downloading MNIST-style files. Every test runs against small IDX files that it
writes itself, served by an HTTP server on 127.0.0.1 in a thread; HOME, the cache and
$DLCORE_DATA point into tmp_path, and a guard fails any test that tries to reach another host,
so the real mirrors are never contacted. Oracles: the bytes the test wrote, and the pinned
digests of the official files (checked against Debian's Fashion-MNIST when installed)."""
import dataclasses
import gzip
import hashlib
import http.server
import struct
import threading
from pathlib import Path

import numpy as np
import pytest

from dlcore.datasets import (
    ChecksumError,
    DatasetNotFoundError,
    DownloadError,
    download_files,
    load_dataset,
    load_fashion_mnist,
    load_mnist,
    write_idx,
)
from dlcore.datasets import download as download_module
from dlcore.datasets import mnist as mnist_module
from dlcore.datasets.idx import format_idx, gzip_deterministic

DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")
N_SAMPLES = {"train": 6, "t10k": 4}


def tiny_split(prefix, n, offset=0):
    """{file name: gzipped IDX bytes} of an n-image split whose labels are offset + 0..n-1."""
    images = np.arange(n * 28 * 28, dtype=np.int64).reshape(n, 28, 28) % 251
    labels = (np.arange(n) + offset) % 10
    return {f"{prefix}-images-idx3-ubyte.gz": gzip_deterministic(format_idx(
                images.astype(np.uint8))),
            f"{prefix}-labels-idx1-ubyte.gz": gzip_deterministic(format_idx(
                labels.astype(np.uint8)))}


def tiny_dataset(offset=0):
    """The four official names with small valid contents."""
    files = {}
    for prefix, n in N_SAMPLES.items():
        files.update(tiny_split(prefix, n, offset))
    return files


def sha256_table(files):
    return {name: hashlib.sha256(content).hexdigest() for name, content in files.items()}


def put_files(directory, files, compressed=True):
    directory.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        if compressed:
            (directory / name).write_bytes(content)
        else:
            (directory / name.removesuffix(".gz")).write_bytes(gzip.decompress(content))
    return directory


class Server:
    """A file server on 127.0.0.1: ``files`` maps names to bytes; names in ``cut`` get their
    headers and half their body, then the connection is closed."""

    def __init__(self):
        self.files, self.cut, self.requests = {}, set(), []
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                name = self.path.lstrip("/")
                owner.requests.append(name)
                if name not in owner.files:
                    self.send_error(404)
                    return
                body = owner.files[name]
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[:len(body) // 2] if name in owner.cut else body)
                self.close_connection = True

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.01,),
                                       daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    running = Server()
    yield running
    running.stop()


@pytest.fixture
def dead_mirror():
    """The URL of a port where nothing listens (a server started and stopped)."""
    stopped = Server()
    stopped.stop()
    return stopped.url


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """Private HOME, cache and data variables; only 127.0.0.1 may be contacted."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for variable in ("DLCORE_DATA", "DLCORE_MNIST_MIRROR", "DLCORE_FASHION_MNIST_MIRROR"):
        monkeypatch.delenv(variable, raising=False)
    real_open_url = download_module.open_url

    def local_only(url, timeout):
        if not url.startswith("http://127.0.0.1:"):
            pytest.fail(f"a test tried to reach {url}")
        return real_open_url(url, timeout=5)

    monkeypatch.setattr(download_module, "open_url", local_only)


@pytest.fixture
def no_debian(monkeypatch, tmp_path):
    """Fashion-MNIST as on a machine without Debian's package."""
    spec = dataclasses.replace(mnist_module.FASHION_MNIST,
                               system_directories=(str(tmp_path / "no-debian"),))
    monkeypatch.setattr(mnist_module, "FASHION_MNIST", spec)


def files_in(directory):
    return sorted(p.name for p in Path(directory).rglob("*") if p.is_file())


# --- download_files --------------------------------------------------------------------

def test_downloaded_files_appear_with_the_served_bytes(server, tmp_path, capsys):
    server.files = tiny_dataset()
    names = list(server.files)
    paths = download_files(names, tmp_path / "d", [server.url], sha256_table(server.files),
                           progress=False)
    assert [p.name for p in paths] == names
    assert all(p.read_bytes() == server.files[p.name] for p in paths)
    assert files_in(tmp_path / "d") == sorted(names)
    assert capsys.readouterr().err == ""


def test_progress_reports_each_file_on_stderr(server, tmp_path, capsys):
    server.files = tiny_split("train", 2)
    download_files(server.files, tmp_path, [server.url], sha256_table(server.files))
    captured = capsys.readouterr()
    assert captured.out == ""
    assert all(f"{name}  [" in captured.err for name in server.files)
    assert captured.err.count("done") == 2


def test_a_corrupted_download_names_the_file_and_both_digests_and_leaves_nothing(
        server, tmp_path):
    good = tiny_split("train", 2)
    name = "train-images-idx3-ubyte.gz"
    corrupted = bytearray(good[name])
    corrupted[len(corrupted) // 2] ^= 0xFF
    server.files = {name: bytes(corrupted)}
    expected = sha256_table(good)[name]
    with pytest.raises(ChecksumError) as caught:
        download_files([name], tmp_path / "d", [server.url], {name: expected}, progress=False)
    message = str(caught.value)
    assert name in message and expected in message
    assert hashlib.sha256(server.files[name]).hexdigest() in message
    assert files_in(tmp_path / "d") == []


def test_a_missing_file_on_the_mirror_is_a_download_error_naming_the_url(server, tmp_path):
    with pytest.raises(DownloadError, match=r"train-labels-idx1-ubyte.gz: HTTP 404"):
        download_files(["train-labels-idx1-ubyte.gz"], tmp_path / "d", [server.url],
                       {"train-labels-idx1-ubyte.gz": "0" * 64}, progress=False)
    assert files_in(tmp_path / "d") == []


def test_an_interrupted_transfer_leaves_no_partial_file(server, tmp_path):
    server.files = tiny_split("train", 3)
    server.cut = {"train-images-idx3-ubyte.gz"}
    with pytest.raises(DownloadError, match="connection closed after"):
        download_files(["train-images-idx3-ubyte.gz"], tmp_path / "d", [server.url],
                       sha256_table(server.files), progress=False)
    assert files_in(tmp_path / "d") == []


def test_the_next_mirror_is_tried_when_one_fails(server, dead_mirror, tmp_path):
    server.files = tiny_split("t10k", 2)
    download_files(server.files, tmp_path, [dead_mirror, server.url],
                   sha256_table(server.files), progress=False)
    assert files_in(tmp_path) == sorted(server.files)


def test_a_file_without_a_pinned_digest_is_not_downloaded(server, tmp_path):
    with pytest.raises(ValueError, match="no sha256 for train-images-idx3-ubyte.gz"):
        download_files(["train-images-idx3-ubyte.gz"], tmp_path, [server.url], {})
    assert server.requests == []


# --- load_mnist: downloads ---------------------------------------------------------------

def test_load_mnist_downloads_the_four_files_into_the_cache_and_reads_the_split(
        server, tmp_path):
    server.files = tiny_dataset()
    images, labels = load_mnist("test", mirrors=[server.url],
                                checksums=sha256_table(server.files), progress=False)
    assert images.shape == (4, 28, 28) and images.dtype == np.uint8
    assert labels.tolist() == [0, 1, 2, 3]
    assert files_in(tmp_path / "cache" / "dlcore" / "mnist") == sorted(server.files)


def test_downloaded_files_are_found_again_without_the_network(server, tmp_path):
    server.files = tiny_dataset()
    load_mnist(mirrors=[server.url], checksums=sha256_table(server.files), progress=False)
    server.requests.clear()
    images, _ = load_mnist("train", mirrors=[server.url], download=False)
    assert len(images) == 6 and server.requests == []


def test_mirror_variable_replaces_the_default_mirrors(server, monkeypatch):
    server.files = tiny_dataset()
    monkeypatch.setenv("DLCORE_MNIST_MIRROR", server.url)
    images, _ = load_mnist(checksums=sha256_table(server.files), progress=False)
    assert len(images) == 6 and len(server.requests) == 4


def test_default_mirrors_are_the_official_ones():
    assert mnist_module.resolve_mirrors(mnist_module.MNIST) == [
        "https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"]
    assert mnist_module.resolve_mirrors(mnist_module.FASHION_MNIST) == [
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"]


def test_files_that_are_not_the_official_mnist_are_rejected_by_the_pinned_digests(
        server, tmp_path):
    server.files = tiny_dataset()
    with pytest.raises(ChecksumError) as caught:
        load_mnist("train", mirrors=[server.url], progress=False)
    official = mnist_module.MNIST_FILES["train-images-idx3-ubyte.gz"].sha256
    assert "train-images-idx3-ubyte.gz" in str(caught.value) and official in str(caught.value)
    assert files_in(tmp_path / "cache") == []


def test_offline_load_raises_one_error_listing_files_directories_and_remedy(
        dead_mirror, tmp_path, monkeypatch):
    monkeypatch.setenv("DLCORE_DATA", str(tmp_path / "data"))
    with pytest.raises(DatasetNotFoundError) as caught:
        load_mnist("test", path=tmp_path / "mine", mirrors=[dead_mirror], progress=False)
    message = str(caught.value)
    assert isinstance(caught.value, FileNotFoundError)
    assert "t10k-images-idx3-ubyte.gz" in message and "t10k-labels-idx1-ubyte.gz" in message
    for directory in (tmp_path / "mine", tmp_path / "data", tmp_path / "data" / "mnist",
                      tmp_path / "cache" / "dlcore" / "mnist"):
        assert f"  {directory}  (" in message
    assert dead_mirror in message and "put the four files" in message


def test_an_interrupted_download_through_load_mnist_leaves_no_partial_file(
        server, tmp_path):
    server.files = tiny_dataset()
    server.cut = {"t10k-labels-idx1-ubyte.gz"}
    with pytest.raises(DatasetNotFoundError, match="connection closed"):
        load_mnist("test", mirrors=[server.url], checksums=sha256_table(server.files),
                   progress=False)
    assert "t10k-labels-idx1-ubyte.gz" not in files_in(tmp_path / "cache")
    assert not any(name.endswith(".part") for name in files_in(tmp_path / "cache"))


def test_download_false_never_touches_the_network(server):
    server.files = tiny_dataset()
    with pytest.raises(DatasetNotFoundError, match="download=False"):
        load_mnist(mirrors=[server.url], download=False)
    assert server.requests == []


# --- load_mnist: search order -----------------------------------------------------------

@pytest.fixture
def three_places(tmp_path, monkeypatch):
    """Different tiny data sets (told apart by their first label) in path, $DLCORE_DATA and
    the cache."""
    places = {"path": tmp_path / "explicit", "data": tmp_path / "data",
              "cache": tmp_path / "cache" / "dlcore" / "mnist"}
    for offset, directory in enumerate(places.values(), start=1):
        put_files(directory, tiny_dataset(offset))
    monkeypatch.setenv("DLCORE_DATA", str(places["data"]))
    return places


def first_label(**kwargs):
    return int(load_mnist(download=False, **kwargs)[1][0])


def test_an_explicit_path_beats_dlcore_data(three_places):
    assert first_label(path=three_places["path"]) == 1


def test_dlcore_data_beats_the_cache(three_places):
    assert first_label() == 2


def test_the_cache_is_used_when_nothing_else_holds_the_files(three_places, monkeypatch):
    monkeypatch.delenv("DLCORE_DATA")
    assert first_label() == 3


def test_the_mnist_subfolder_of_dlcore_data_is_searched(tmp_path, monkeypatch):
    put_files(tmp_path / "data" / "mnist", tiny_dataset(5))
    monkeypatch.setenv("DLCORE_DATA", str(tmp_path / "data"))
    assert first_label() == 5


def test_a_user_without_a_home_folder_finds_the_system_copy_or_is_told_what_to_set(
        tmp_path, monkeypatch):
    # a container started with --user <number>: no HOME, no entry in the password database.
    # load_fashion_mnist() ended in "RuntimeError: Could not determine home directory." even
    # with Debian's copy installed, as it listed the cache folder among those it searches
    from test_backend_threads import no_home_folder
    no_home_folder(monkeypatch)
    put_files(tmp_path / "system", tiny_dataset(6))
    spec = dataclasses.replace(mnist_module.FASHION_MNIST,
                               system_directories=(str(tmp_path / "system"),))
    monkeypatch.setattr(mnist_module, "FASHION_MNIST", spec)
    assert int(load_fashion_mnist(download=False)[1][0]) == 6
    with pytest.raises(DatasetNotFoundError) as missing:
        load_mnist()
    assert str(missing.value).startswith(
        "MNIST train split not found: no folder to look in for train-images-idx3-ubyte.gz and "
        "train-labels-idx1-ubyte.gz (no path=, no $DLCORE_DATA, no home folder for the cache)")
    assert "nowhere to download to: no home folder" in str(missing.value)
    assert "To fix: set $DLCORE_DATA to a folder whose mnist/ subfolder holds the four " \
        "files" in str(missing.value)


def test_a_relative_xdg_cache_home_is_ignored_as_the_kernel_cache_ignores_it(tmp_path,
                                                                             monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", "relative")
    assert mnist_module.cache_directory("mnist") == tmp_path / "home" / ".cache" / "dlcore" \
        / "mnist"


def test_uncompressed_files_are_accepted(tmp_path):
    put_files(tmp_path / "raw", tiny_dataset(7), compressed=False)
    assert first_label(path=tmp_path / "raw") == 7


def test_a_directory_with_only_half_a_split_is_passed_over(tmp_path, monkeypatch):
    half = {k: v for k, v in tiny_dataset(1).items() if "images" in k}
    put_files(tmp_path / "half", half)
    put_files(tmp_path / "cache" / "dlcore" / "mnist", tiny_dataset(4))
    assert first_label(path=tmp_path / "half") == 4


def test_a_directory_name_loads_its_idx_files(tmp_path):
    put_files(tmp_path / "mine", tiny_dataset(2), compressed=False)
    images, labels = load_dataset(str(tmp_path / "mine"), split="test")
    assert images.shape == (4, 28, 28) and labels[0] == 2


def test_mismatched_image_and_label_counts_are_reported(tmp_path):
    files = tiny_dataset()
    files["train-labels-idx1-ubyte.gz"] = gzip.compress(format_idx(np.zeros(5, np.uint8)))
    put_files(tmp_path / "bad", files)
    with pytest.raises(ValueError, match="6 images but .* 5 labels"):
        load_mnist(path=tmp_path / "bad", download=False)


# --- Fashion-MNIST ----------------------------------------------------------------------

needs_debian = pytest.mark.skipif(
    not DEBIAN_FASHION.is_dir(),
    reason="Debian's dataset-fashion-mnist is not installed (/usr/share/datasets/fashion-mnist)")


@needs_debian
def test_fashion_mnist_loads_from_debians_package_without_downloading(server):
    images, labels = load_fashion_mnist("test", download=False, mirrors=[server.url])
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert np.bincount(labels).tolist() == [1000] * 10
    assert server.requests == []


@needs_debian
def test_debians_fashion_archives_are_the_official_ones_with_a_rewritten_gzip_header():
    # Debian dropped the file name and reset the mtime; the deflate streams are untouched.
    original_mtime = {"train": 1504176606, "t10k": 1504176627}      # 2017-08-31
    for name, official in mnist_module.FASHION_MNIST_FILES.items():
        debian = (DEBIAN_FASHION / name).read_bytes()
        assert debian[:4] == b"\x1f\x8b\x08\x00"                     # no FNAME
        mtime = original_mtime[name.split("-")[0]]
        header = (b"\x1f\x8b\x08\x08" + struct.pack("<I", mtime) + b"\x00\x03"
                  + name.removesuffix(".gz").encode() + b"\x00")    # FNAME, XFL 0, Unix
        restored = header + debian[10:]
        assert len(restored) == official.size
        assert hashlib.sha256(restored).hexdigest() == official.sha256
        assert hashlib.md5(restored).hexdigest() == official.md5
        assert hashlib.sha256(gzip.decompress(debian)).hexdigest() == official.content_sha256


def test_fashion_mnist_offline_message_suggests_apt_get(no_debian, dead_mirror):
    with pytest.raises(DatasetNotFoundError) as caught:
        load_fashion_mnist(mirrors=[dead_mirror], progress=False)
    message = str(caught.value)
    assert "apt-get install dataset-fashion-mnist" in message
    assert "fashion-mnist" in message and "train-images-idx3-ubyte.gz" in message


def test_fashion_mnist_ignores_mnist_files_at_the_top_of_dlcore_data(
        no_debian, tmp_path, monkeypatch):
    put_files(tmp_path / "data", tiny_dataset(1))             # MNIST, flat
    put_files(tmp_path / "data" / "fashion-mnist", tiny_dataset(8))
    monkeypatch.setenv("DLCORE_DATA", str(tmp_path / "data"))
    assert load_fashion_mnist(download=False)[1][0] == 8
    assert load_mnist(download=False)[1][0] == 1


def test_fashion_mnist_downloads_into_its_own_cache_folder(no_debian, server, tmp_path):
    server.files = tiny_dataset()
    load_fashion_mnist(mirrors=[server.url], checksums=sha256_table(server.files),
                       progress=False)
    assert files_in(tmp_path / "cache" / "dlcore" / "fashion-mnist") == sorted(server.files)


def test_write_idx_output_is_what_the_loaders_read(tmp_path):
    directory = tmp_path / "written"
    directory.mkdir()
    images = np.full((3, 28, 28), 200, dtype=np.uint8)
    write_idx(directory / "train-images-idx3-ubyte.gz", images)
    write_idx(directory / "train-labels-idx1-ubyte", np.array([4, 5, 6], dtype=np.uint8))
    loaded, labels = load_mnist(path=directory, download=False)
    assert np.array_equal(loaded, images) and labels.tolist() == [4, 5, 6]


@pytest.mark.parametrize("as_path", [str, Path])
def test_a_folder_given_as_the_split_is_told_to_go_to_path(as_path, tmp_path):
    # Keras's mnist.load_data(path) takes the path first; dlcore's loaders take the split
    with pytest.raises(ValueError) as error:
        load_mnist(as_path(tmp_path), download=False)
    message = str(error.value)
    assert message.startswith("split must be 'train' or 'test'")
    assert f"give it as path={str(tmp_path)!r}" in message


def test_a_misspelt_split_gets_no_path_advice():
    with pytest.raises(ValueError) as error:
        load_mnist("validation", download=False)
    assert str(error.value) == "split must be 'train' or 'test', got 'validation'"


@pytest.mark.parametrize("name, start", [
    ("model.h5", b""),                                # by its name (an empty file too)
    ("best", b"\x89HDF\r\n\x1a\n" + bytes(8)),       # by its first bytes: HDF5's
    ("net.keras", b"PK\x03\x04")])
def test_a_model_file_given_as_the_data_set_is_said_to_be_one(tmp_path, name, start):
    """runs/x/model.h5 given as the data set was told to give its folder, runs/x, which holds
    no IDX files."""
    model = tmp_path / name
    model.write_bytes(start)
    with pytest.raises(ValueError) as error:
        load_dataset(str(model))
    assert str(error.value) == (
        f"{str(model)!r} is a model file, not a data set: a data set is one of mnist-5k, "
        "mnist, fashion-mnist, or a folder holding IDX files (images and labels)")


def test_an_idx_file_given_as_the_data_set_is_told_to_give_its_folder(tmp_path):
    images_file = tmp_path / "train-images-idx3-ubyte.gz"
    images_file.write_bytes(b"not read")
    with pytest.raises(ValueError) as error:
        load_dataset(str(images_file))
    assert str(error.value).startswith(f"{str(images_file)!r} is a file; a data set is read "
                                       f"from the folder that holds its IDX files")
    assert f"give that folder, {str(tmp_path)!r}, or one of mnist-5k" in str(error.value)


def test_a_home_folder_written_with_a_tilde_is_expanded_as_the_command_line_expands_it(
        tmp_path, monkeypatch):
    """`dlcore ... --dataset '~/idx'` found the folder in the home folder, but the library's
    load_dataset('~/idx') said "the folder '~/idx' does not exist", and DLCORE_DATA='~/data'
    (quoted in a shell profile) was never searched: both looked for a folder named ~."""
    home = tmp_path / "home"
    put_files(home / "idx", tiny_dataset(3), compressed=False)
    put_files(home / "data" / "mnist", tiny_dataset(4))
    for name in ("~/idx", Path("~/idx")):
        assert int(load_dataset(name, "test")[1][0]) == 3
    assert int(mnist_module.load_idx_directory("~/idx")[1][0]) == 3
    monkeypatch.setenv("DLCORE_DATA", "~/data")
    assert first_label() == 4
