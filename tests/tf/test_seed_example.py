"""examples/seed.py: the seed's tf.data code runs on stoker with only its imports changed."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
SEED = ROOT / "examples" / "seed.py"
DATA_DIR = ROOT / "tests" / "data" / "tfds"
# The three lines that differ from the TensorFlow version, and what they were.
STOKER_IMPORTS = {
    "import stoker.tf as tf": "import tensorflow as tf",
    "import stoker.tfds as tfds": "import tensorflow_datasets as tfds",
    "from stoker.tf.data.experimental import AUTOTUNE": (
        "from tensorflow.data.experimental import AUTOTUNE"
    ),
}
LINE = re.compile(
    r"^(?P<name>tfds\.load|TFRecord interleave): 24 images, \[\(\(224, 224, 3\), 'float32'\)\], "
    r"values in \[(?P<low>[\d.]+), (?P<high>[\d.]+)\], labels \[12, 12\], \d+ images/s$"
)

pytest.importorskip("cv2")


def tensorflow_source() -> str:
    """examples/seed.py with its three imports put back to TensorFlow's."""
    lines = SEED.read_text().splitlines()
    assert all(line in lines for line in STOKER_IMPORTS), "seed.py's imports changed"
    code_lines = [STOKER_IMPORTS.get(line, line) for line in lines]
    # Below the docstring, nothing else names stoker: the rest is TensorFlow code as written.
    body = "\n".join(code_lines).split('"""', 2)[2]
    assert "stoker" not in body
    return "\n".join(code_lines) + "\n"


def _check_output(stdout: str) -> None:
    lines = stdout.strip().splitlines()
    assert len(lines) == 2, stdout
    for line, name in zip(lines, ["tfds.load", "TFRecord interleave"], strict=True):
        match = LINE.match(line)
        assert match, line
        assert match["name"] == name
        assert 0.0 <= float(match["low"]) < 0.2 and 0.8 < float(match["high"]) <= 1.0, line


def test_seed_example_runs_on_stoker() -> None:
    env = {**os.environ, "TFDS_DATA_DIR": str(DATA_DIR)}
    done = subprocess.run(
        [sys.executable, str(SEED)], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    _check_output(done.stdout)
    tensorflow_source()  # and differs from the TensorFlow version only in its imports


@pytest.mark.skipif(
    not os.environ.get("STOKER_TF_PYTHON"),
    reason="optional cross-check: set STOKER_TF_PYTHON to a Python with tensorflow and "
    "tensorflow-datasets to run the same source under TensorFlow",
)
def test_same_source_runs_under_tensorflow(tmp_path: Path) -> None:
    script = tmp_path / "seed_tensorflow.py"
    script.write_text(tensorflow_source())
    env = {**os.environ, "TFDS_DATA_DIR": str(DATA_DIR), "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("PYTHONPATH", None)  # TensorFlow's own modules only
    done = subprocess.run(
        [os.environ["STOKER_TF_PYTHON"], str(script)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    _check_output(done.stdout)
