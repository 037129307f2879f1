"""Data sets from their official files: MNIST (the real files), Fashion-MNIST and CIFAR-10 (small
files written here in the official formats), and every way a file can be wrong."""

from __future__ import annotations

import gzip
import hashlib
import re
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from cnnumpy.data import DataFileError, cifar10, fashion_mnist, load_dataset, mnist, read_idx
from cnnumpy.data.files import find_file
from cnnumpy.data.idx import parse_idx
from cnnumpy.data.mnist import FASHION_MNIST_CLASSES, FILES, MNIST_SHA256

SHARED_MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
# From ../shared/data/README.md: class counts of the 60,000 training and 10,000 test images
TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
README_SHA256 = {  # the README's "sha256 of the uncompressed IDX" column, typed in separately
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}


# -- writers of the official formats (test-only, independent of the library) -------------------
def idx_bytes(array: np.ndarray) -> bytes:
    """IDX encoding of a uint8 array: 0x00 0x00 0x08 ndim, big-endian sizes, the bytes."""
    array = np.asarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()


def write(path: Path, data: bytes, gz: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        path = path.with_name(path.name + ".gz")
        data = gzip.compress(data, mtime=0)
    path.write_bytes(data)
    return path


def fake_idx_set(directory: Path, n_train: int, n_test: int, seed: int = 0, gz: bool = True):
    """The four IDX files with random 28x28 images and labels 0-9; returns the arrays."""
    rng = np.random.default_rng(seed)
    arrays = {
        "train_images": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train_labels": rng.integers(0, 10, n_train, dtype=np.uint8),
        "test_images": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "test_labels": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    for key, array in arrays.items():
        write(directory / FILES[key], idx_bytes(array), gz)
    return arrays


def cifar_bytes(images: np.ndarray, labels: np.ndarray) -> bytes:
    """CIFAR-10 binary records: one label byte, then the (3, 32, 32) pixels in C order."""
    return np.concatenate([labels[:, None], images.reshape(len(labels), -1)], axis=1).tobytes()


def fake_cifar(directory: Path, per_file: int = 4, seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    batches = []
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        images = rng.integers(0, 256, (per_file, 3, 32, 32), dtype=np.uint8)
        labels = rng.integers(0, 10, per_file, dtype=np.uint8)
        write(directory / name, cifar_bytes(images, labels))
        batches.append((images, labels))
    return batches


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- the real MNIST files ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def real_mnist():
    return mnist(SHARED_MNIST)


def test_mnist_shapes_split_and_class_counts(real_mnist):
    data = real_mnist
    assert {p: len(getattr(data, p)[1]) for p in ("train", "val", "test")} == {
        "train": 55000, "val": 5000, "test": 10000,
    }  # fmt: skip
    for part in ("train", "val", "test"):
        images, labels = getattr(data, part)
        assert images.dtype == np.uint8 and images.shape[1:] == (1, 28, 28), part
        assert labels.dtype == np.int64, part
    all_train = np.concatenate([data.train[1], data.val[1]])
    assert np.bincount(all_train, minlength=10).tolist() == TRAIN_COUNTS
    assert np.bincount(data.test[1], minlength=10).tolist() == TEST_COUNTS
    assert data.classes == tuple("0123456789") and data.name == "mnist"


def test_mnist_pixels_agree_with_a_plain_read_and_val_is_the_last_5000(real_mnist):
    with gzip.open(SHARED_MNIST / "train-images-idx3-ubyte.gz") as f:
        raw = np.frombuffer(f.read(), np.uint8, offset=16).reshape(60000, 28, 28)
    with gzip.open(SHARED_MNIST / "train-labels-idx1-ubyte.gz") as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8)
    assert np.array_equal(real_mnist.train[0][:, 0], raw[:55000])
    assert np.array_equal(real_mnist.val[0][:, 0], raw[55000:])
    assert np.array_equal(real_mnist.val[1], labels[55000:])
    assert real_mnist.train[1][:8].tolist() == [5, 0, 4, 1, 9, 2, 1, 3]  # the well-known start


def test_checksum_table_matches_the_real_files_and_the_readme():
    assert MNIST_SHA256 == README_SHA256
    for name, digest in MNIST_SHA256.items():
        with gzip.open(SHARED_MNIST / f"{name}.gz") as f:
            assert sha(f.read()) == digest, name


def test_uncompressed_and_recompressed_copies_verify(tmp_path):
    content = gzip.decompress((SHARED_MNIST / "t10k-images-idx3-ubyte.gz").read_bytes())
    digest = MNIST_SHA256["t10k-images-idx3-ubyte"]
    plain = write(tmp_path / "plain" / "t10k-images-idx3-ubyte", content)
    fast = tmp_path / "fast" / "t10k-images-idx3-ubyte.gz"
    fast.parent.mkdir()
    fast.write_bytes(gzip.compress(content, compresslevel=1))
    a = read_idx(plain, dtype=np.uint8, ndim=3, sha256=digest)
    b = read_idx(fast, dtype=np.uint8, ndim=3, sha256=digest)
    assert a.shape == (10000, 28, 28) and np.array_equal(a, b)


# -- what is wrong with a file -------------------------------------------------------------------
@pytest.fixture(scope="module")
def t10k_labels() -> bytes:
    return gzip.decompress((SHARED_MNIST / "t10k-labels-idx1-ubyte.gz").read_bytes())


def read_labels(path: Path, verify: bool = True) -> np.ndarray:
    digest = MNIST_SHA256["t10k-labels-idx1-ubyte"] if verify else None
    return read_idx(path, dtype=np.uint8, ndim=1, sha256=digest)


def test_truncated_files(tmp_path, t10k_labels):
    cut = t10k_labels[:5000]
    plain = write(tmp_path / "a" / "t10k-labels-idx1-ubyte", cut)
    with pytest.raises(DataFileError, match=r"truncated: its header declares 10000 uint8 .* but "
                       r"4992 bytes follow the 8-byte header") as info:  # fmt: skip
        read_labels(plain)
    assert str(plain) in str(info.value)
    packed = gzip.compress(t10k_labels)
    gz = write(tmp_path / "b" / "t10k-labels-idx1-ubyte.gz", packed[: len(packed) // 2])
    with pytest.raises(DataFileError, match="gzip data is truncated or corrupt") as info:
        read_labels(gz)
    assert str(gz) in str(info.value)
    with pytest.raises(DataFileError, match="truncated inside the header"):
        parse_idx(t10k_labels[:6], "x")
    with pytest.raises(DataFileError, match="too short"):
        parse_idx(b"", "empty")


def test_bit_flips_are_caught_by_the_checksum_or_the_gzip_crc(tmp_path, t10k_labels):
    flipped = bytearray(t10k_labels)
    flipped[5000] ^= 0x01  # label 7 -> 6 or the like: well-formed, silently wrong data
    path = write(tmp_path / "t10k-labels-idx1-ubyte", bytes(flipped))
    with pytest.raises(DataFileError) as info:
        read_labels(path)
    msg = str(info.value)
    assert str(path) in msg and sha(bytes(flipped)) in msg
    assert MNIST_SHA256["t10k-labels-idx1-ubyte"] in msg
    assert "--no-verify on the command line, verify=False in Python" in msg
    assert read_labels(path, verify=False)[4992] == flipped[5000], "verify=False accepts it"
    packed = bytearray(gzip.compress(t10k_labels))
    packed[len(packed) // 2] ^= 0x10
    gz = write(tmp_path / "gz" / "t10k-labels-idx1-ubyte.gz", bytes(packed))
    with pytest.raises(DataFileError, match="truncated or corrupt"):
        read_labels(gz, verify=False)


@pytest.mark.parametrize(
    ("magic", "found"),
    [
        (b"\x00\x00\x08\x03", r"0x00000803 \(uint8 elements, 3 dimensions\)"),
        (b"\x00\x00\x0d\x01", r"0x00000d01 \(float32 elements, 1 dimension\)"),
        (b"\x00\x00\x08\x00", r"0x00000800 \(not an IDX magic number\)"),
        (b"PK\x03\x04", r"0x504b0304 \(not an IDX magic number\)"),
    ],
)
def test_a_wrong_magic_number_is_reported_before_any_size(tmp_path, t10k_labels, magic, found):
    """A label file whose magic number is off is not read as a header of other sizes (10000
    labels read as a 3-D header give an absurd 'truncated' 10000x...x... instead)."""
    path = write(tmp_path / "t10k-labels-idx1-ubyte", magic + t10k_labels[4:])
    with pytest.raises(DataFileError) as info:
        read_labels(path)
    message = str(info.value)
    assert message.startswith(f"{path}: wrong magic number: expected 0x00000801 (uint8 elements, ")
    assert re.search(f"found {found}$", message), message
    assert "truncated" not in message and "sha256" not in message


def test_an_image_file_under_a_label_file_name_is_a_wrong_magic_number(tmp_path):
    fake_idx_set(tmp_path, n_train=30, n_test=5)
    shutil.copy(tmp_path / "t10k-images-idx3-ubyte.gz", tmp_path / "t10k-labels-idx1-ubyte.gz")
    with pytest.raises(DataFileError, match=r"t10k-labels-idx1-ubyte.gz: wrong magic number: "
                       r"expected 0x00000801 .*, found 0x00000803"):  # fmt: skip
        fashion_mnist(tmp_path, n_val=5)


@pytest.mark.parametrize(
    "head, message",
    [
        (b"\x00\x00\x08\x00", "not an IDX file: magic number 0x00000800"),
        (b"\x01\x00\x08\x01", "not an IDX file: magic number 0x01000801"),
        (b"\x00\x00\x07\x01", "not an IDX file: magic number 0x00000701"),
        (b"PK\x03\x04", "not an IDX file: magic number 0x504b0304"),
    ],
)
def test_wrong_magic_numbers(head, message):
    with pytest.raises(DataFileError, match=message):
        parse_idx(head + b"\x00" * 12, "f")


def test_wrong_type_trailing_bytes_and_other_idx_types(tmp_path, t10k_labels):
    path = write(tmp_path / "labels", t10k_labels)
    with pytest.raises(DataFileError, match=r"labels: wrong magic number: expected 0x00000803 "
                       r"\(uint8 elements, 3 dimensions\), found 0x00000801 \(uint8 elements, "
                       r"1 dimension\)"):  # fmt: skip
        read_idx(path, dtype=np.uint8, ndim=3)
    with pytest.raises(DataFileError, match=r"expected 0x00000d01 \(float32 elements, 1 dim"):
        read_idx(path, dtype=np.float32, ndim=1)
    with pytest.raises(DataFileError, match="has trailing bytes"):
        parse_idx(t10k_labels + b"\x00", "f")
    values = np.array([[1, -2, 300]], dtype=">i4")
    raw = b"\x00\x00\x0c\x02" + struct.pack(">2I", 1, 3) + values.tobytes()
    got = parse_idx(raw)
    assert got.dtype == np.int32 and got.dtype.isnative and got.tolist() == [[1, -2, 300]]


def test_swapped_files_are_named(tmp_path):
    for name in FILES.values():
        (tmp_path / f"{name}.gz").symlink_to(SHARED_MNIST / f"{name}.gz")
    (tmp_path / "train-labels-idx1-ubyte.gz").unlink()
    shutil.copy(SHARED_MNIST / "t10k-labels-idx1-ubyte.gz", tmp_path / "train-labels-idx1-ubyte")
    with pytest.raises(DataFileError) as info:
        mnist(tmp_path)
    msg = str(info.value)
    assert msg.startswith(str(tmp_path / "train-labels-idx1-ubyte:"))
    assert "this content is the official MNIST t10k-labels-idx1-ubyte, a different file" in msg
    assert MNIST_SHA256["train-labels-idx1-ubyte"] in msg  # what was expected
    with pytest.raises(DataFileError, match="holds 60000 images but .* holds 10000 labels"):
        mnist(tmp_path, verify=False)


# -- whole data sets from small files in the official formats -----------------------------------
def test_fashion_mnist_from_small_official_format_files(tmp_path):
    arrays = fake_idx_set(tmp_path / "fashion-mnist", n_train=50, n_test=12)
    data = fashion_mnist(tmp_path, n_val=10)  # found in the fashion-mnist/ subdirectory
    assert data.classes == FASHION_MNIST_CLASSES and data.name == "fashion-mnist"
    assert [len(getattr(data, p)[1]) for p in ("train", "val", "test")] == [40, 10, 12]
    assert np.array_equal(data.train[0][:, 0], arrays["train_images"][:40])
    assert np.array_equal(data.val[1], arrays["train_labels"][40:])
    assert np.array_equal(data.test[0][:, 0], arrays["test_images"])
    assert data.test[1].dtype == np.int64 and data.train[0].shape[1:] == (1, 28, 28)


def test_checksum_tables_and_verify_false(tmp_path):
    fake_idx_set(tmp_path, n_train=30, n_test=5, gz=False)
    table = {name: sha((tmp_path / name).read_bytes()) for name in FILES.values()}
    assert len(fashion_mnist(tmp_path, n_val=5, checksums=table).train[1]) == 25
    table["t10k-images-idx3-ubyte"] = "f" * 64
    with pytest.raises(DataFileError, match="t10k-images-idx3-ubyte: the sha256 .* but the offi"):
        fashion_mnist(tmp_path, n_val=5, checksums=table)
    with pytest.raises(DataFileError, match="corrupt, truncated or not the official one"):
        mnist(tmp_path, n_val=5)  # not MNIST's content
    assert len(mnist(tmp_path, n_val=5, verify=False).test[1]) == 5


def test_mnist_files_are_refused_as_fashion_mnist(tmp_path):
    fake_idx_set(tmp_path, n_train=30, n_test=5)
    shutil.copy(SHARED_MNIST / "train-labels-idx1-ubyte.gz", tmp_path)
    with pytest.raises(DataFileError, match="is the official MNIST train-labels-idx1-ubyte"):
        fashion_mnist(tmp_path, n_val=5)


def test_label_range_count_mismatch_and_split_size(tmp_path):
    arrays = fake_idx_set(tmp_path, n_train=30, n_test=5)
    labels = arrays["test_labels"].copy()
    labels[3] = 10
    write(tmp_path / "t10k-labels-idx1-ubyte", idx_bytes(labels), gz=True)
    with pytest.raises(DataFileError, match=r"label 10 at index 3 is outside \[0, 10\)"):
        fashion_mnist(tmp_path, n_val=5)
    write(tmp_path / "t10k-labels-idx1-ubyte", idx_bytes(labels[:4] % 10), gz=True)
    with pytest.raises(DataFileError, match="holds 5 images but .* holds 4 labels"):
        fashion_mnist(tmp_path, n_val=5)
    write(tmp_path / "t10k-labels-idx1-ubyte", idx_bytes(arrays["test_labels"]), gz=True)
    with pytest.raises(ValueError, match="cannot hold out 30 of the 30 training images"):
        fashion_mnist(tmp_path, n_val=30)
    images = arrays["test_images"].reshape(5, 56, 14)  # same bytes, other dimensions
    write(tmp_path / "t10k-images-idx3-ubyte", idx_bytes(images), gz=True)
    with pytest.raises(DataFileError, match="images of 56x14 pixels, expected 28x28"):
        fashion_mnist(tmp_path, n_val=5)


def test_missing_files_say_what_where_and_where_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        mnist(tmp_path)
    msg = str(info.value)
    assert "'train-images-idx3-ubyte.gz' or 'train-images-idx3-ubyte'" in msg
    assert f"{tmp_path}, {tmp_path / 'mnist'}" in msg and "yann.lecun.com/exdb/mnist" in msg
    with pytest.raises(FileNotFoundError, match="github.com/zalandoresearch/fashion-mnist"):
        fashion_mnist(tmp_path)
    (tmp_path / "cifar-10-batches-py").mkdir()
    (tmp_path / "cifar-10-batches-py" / "data_batch_1").write_bytes(b"\x80\x04pickle")
    with pytest.raises(FileNotFoundError) as info:
        cifar10(tmp_path)
    msg = str(info.value)
    assert "'data_batch_1.bin'" in msg and str(tmp_path / "cifar-10-batches-bin") in msg
    assert "cs.toronto.edu/~kriz/cifar.html" in msg and "binary version" in msg


def test_find_file_looks_in_order_and_prefers_the_gz(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    second.mkdir()
    (second / "f").write_bytes(b"")

    def find() -> Path:
        return find_file("f", [first, second], dataset="d", url="u")

    assert find() == second / "f"
    (second / "f.gz").write_bytes(b"")
    assert find() == second / "f.gz"
    first.mkdir()
    (first / "f").write_bytes(b"")
    assert find() == first / "f"


def test_cifar10_layout_split_and_locations(tmp_path):
    batches = fake_cifar(tmp_path / "cifar-10-batches-bin", per_file=4)
    data = cifar10(tmp_path, n_val=6)
    assert [len(getattr(data, p)[1]) for p in ("train", "val", "test")] == [14, 6, 4]
    images = np.concatenate([b[0] for b in batches[:5]])
    labels = np.concatenate([b[1] for b in batches[:5]])
    assert np.array_equal(data.train[0], images[:14]) and np.array_equal(data.val[0], images[14:])
    assert np.array_equal(data.val[1], labels[14:]) and data.val[1].dtype == np.int64
    assert np.array_equal(data.test[0], batches[5][0])
    assert data.classes[0] == "airplane" and data.classes[9] == "truck"
    # the byte after the label is the red value of the top-left pixel, 1024 later the green one
    raw = (tmp_path / "cifar-10-batches-bin" / "data_batch_1.bin").read_bytes()
    assert data.train[0][0, 0, 0, 0] == raw[1] and data.train[0][0, 1, 0, 0] == raw[1025]
    assert data.train[0][0, 0, 1, 0] == raw[1 + 32]  # rows of 32
    assert data.train[0][1, 2, 31, 31] == raw[2 * 3073 - 1]  # last byte of the second record
    assert data.train[1][1] == raw[3073]
    flat = fake_cifar(tmp_path / "flat", per_file=3, seed=1)
    assert np.array_equal(cifar10(tmp_path / "flat", n_val=3).test[1], flat[5][1])


def test_cifar10_errors(tmp_path):
    fake_cifar(tmp_path, per_file=4)
    batch = tmp_path / "data_batch_3.bin"
    good = batch.read_bytes()
    batch.write_bytes(good[:-100])
    with pytest.raises(DataFileError, match=r"data_batch_3.bin: 12192 bytes is not a whole numb"):
        cifar10(tmp_path, n_val=2)
    batch.write_bytes(good[: 3 * 3073])
    with pytest.raises(DataFileError, match="data_batch_3.bin: 3, .*one of them is truncated"):
        cifar10(tmp_path, n_val=2)
    bad = bytearray(good)
    bad[2 * 3073] = 10
    batch.write_bytes(bytes(bad))
    with pytest.raises(DataFileError, match="record 2 has label byte 10, outside 0-9"):
        cifar10(tmp_path, n_val=2)
    batch.write_bytes(good)
    table = {"test_batch.bin": "0" * 64, "data_batch_3.bin": sha(good)}
    with pytest.raises(DataFileError, match="test_batch.bin: the sha256 .*0000"):
        cifar10(tmp_path, n_val=2, checksums=table)
    assert len(cifar10(tmp_path, n_val=2, checksums=table, verify=False).test[1]) == 4


def test_load_dataset_by_name(tmp_path):
    fake_idx_set(tmp_path, n_train=5010, n_test=3, gz=False)
    assert load_dataset("fashion-mnist", tmp_path).val[0].shape == (5000, 1, 28, 28)
    assert load_dataset("digits").name == "digits"
    everything = load_dataset("fashion-mnist", tmp_path, n_val=0)  # train on all of them
    assert len(everything.train[1]) == 5010 and everything.val[0].shape == (0, 1, 28, 28)
    with pytest.raises(ValueError, match="fixed train/val/test split"):
        load_dataset("digits", n_val=100)
    with pytest.raises(ValueError, match="unknown data set 'svhn'"):
        load_dataset("svhn", tmp_path)
    with pytest.raises(ValueError, match="give the directory"):
        load_dataset("mnist")


def test_nothing_is_ever_unpickled():
    source = Path(__file__).resolve().parents[1] / "cnnumpy" / "data"
    for path in source.glob("*.py"):
        text = path.read_text()
        assert "import pickle" not in text and "allow_pickle=True" not in text, path
