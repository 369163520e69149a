"""The seed's tf.data input pipeline, run on stoker with only its imports changed.

This is TensorFlow code: a cats-vs-dogs augmentation function with tf.image ops, a
``tfds.load`` of the prepared dataset, a parallel ``map``, ``prefetch(AUTOTUNE)``, and the
same records read straight from their TFRecord files through an ``interleave``. The only
lines that differ from the TensorFlow version are the three imports, which were::

    import tensorflow as tf
    import tensorflow_datasets as tfds
    from tensorflow.data.experimental import AUTOTUNE

It reads the prepared ``cats_vs_dogs`` under ``$TFDS_DATA_DIR`` (default
``~/tensorflow_datasets``). A small one with cats_vs_dogs' features ships with the tests::

    TFDS_DATA_DIR=tests/data/tfds python examples/seed.py
"""

import os
import time

import numpy as np

import stoker.tf as tf
import stoker.tfds as tfds
from stoker.tf.data.experimental import AUTOTUNE

IMAGE_SIZE = 224
BATCH_SIZE = 64


def augment(image, label):
    image = tf.image.random_flip_left_right(image)
    image = tf.image.random_flip_up_down(image)
    image = tf.image.random_brightness(image, max_delta=0.2)
    image = tf.image.random_saturation(image, lower=0.8, upper=1.2)
    image = tf.image.random_hue(image, max_delta=0.05)
    image = tf.image.random_contrast(image, lower=0.8, upper=1.2)
    image = tf.image.resize(image, [IMAGE_SIZE, IMAGE_SIZE])
    image = tf.cast(image, tf.float32) / 255.0
    return image, label


# 1. The prepared TFDS dataset: decode, augment in parallel, batch, prefetch.
train = tfds.load("cats_vs_dogs", split=tfds.Split.TRAIN, as_supervised=True)
train = train.map(augment, num_parallel_calls=AUTOTUNE)
train = train.batch(BATCH_SIZE).prefetch(AUTOTUNE)

# 2. The same records from their TFRecord files: interleave the shards, parse, decode.
FEATURES = {
    "image": tf.io.FixedLenFeature([], tf.string),
    "label": tf.io.FixedLenFeature([], tf.int64),
}


def parse(record):
    example = tf.io.parse_single_example(record, FEATURES)
    image = tf.io.decode_jpeg(example["image"], channels=3)
    return image, example["label"]


data_dir = os.environ.get("TFDS_DATA_DIR", os.path.expanduser("~/tensorflow_datasets"))
pattern = os.path.join(data_dir, "cats_vs_dogs", "*", "cats_vs_dogs-train.tfrecord-*")
files = tf.data.Dataset.list_files(pattern, shuffle=True, seed=0)
records = files.interleave(tf.data.TFRecordDataset, cycle_length=2, num_parallel_calls=AUTOTUNE)
from_files = records.map(parse, num_parallel_calls=AUTOTUNE)
from_files = from_files.map(augment, num_parallel_calls=AUTOTUNE)
from_files = from_files.batch(BATCH_SIZE).prefetch(AUTOTUNE)

for name, dataset in [("tfds.load", train), ("TFRecord interleave", from_files)]:
    start = time.perf_counter()
    count, shapes, low, high, labels = 0, set(), 1.0, 0.0, []
    for images, batch_labels in dataset:
        images, batch_labels = np.asarray(images), np.asarray(batch_labels)
        count += images.shape[0]
        shapes.add((images.shape[1:], images.dtype.name))
        low, high = min(low, float(images.min())), max(high, float(images.max()))
        labels.extend(int(x) for x in batch_labels)
    seconds = time.perf_counter() - start
    print(
        f"{name}: {count} images, {sorted(shapes)}, values in [{low:.3f}, {high:.3f}], "
        f"labels {np.bincount(labels).tolist()}, {count / seconds:.0f} images/s"
    )
