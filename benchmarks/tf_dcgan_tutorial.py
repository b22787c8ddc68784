"""The TensorFlow DCGAN tutorial (tensorflow.org/tutorials/generative/dcgan), trained for a wall-clock budget.

Its code as published: the generator and discriminator of ``make_generator_model`` /
``make_discriminator_model``, ``BinaryCrossentropy(from_logits=True)`` losses, ``Adam(1e-4)`` for both
networks, batch 256, a shuffle buffer of 60,000, and its ``@tf.function train_step`` (one tape pass; both
losses from the same discriminator outputs). Only the loop around it differs: it stops after ``--minutes``
of training and, every ``--eval-minutes``, writes ``--samples`` PNGs from fresh noise into
``OUT/samples-NNN/`` (and ``OUT/samples-final/``) with the clock stopped, so ``ganvae evaluate images:DIR`` can
score them with ganvae's protocol. Needs ``tensorflow-cpu`` (``pip install -e ".[bench]"``); not part of the
package.

    .venv-bench/bin/python benchmarks/tf_dcgan_tutorial.py --data-dir ../shared/data/mnist --minutes 10 --out OUT
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", required=True, help="folder with MNIST's train-images-idx3-ubyte(.gz)")
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--eval-minutes", type=float, default=1.0, help="training minutes between sample folders")
    p.add_argument("--samples", type=int, default=2000, help="PNGs per intermediate sample folder")
    p.add_argument("--final-samples", type=int, default=10000)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np
    import tensorflow as tf
    from PIL import Image
    from tensorflow.keras import layers

    from ganvae.data.idx import read_idx

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    tf.random.set_seed(args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    path = Path(args.data_dir) / "train-images-idx3-ubyte.gz"
    if not path.exists():
        path = Path(args.data_dir) / "train-images-idx3-ubyte"
    train_images = read_idx(path, kind="images").reshape(-1, 28, 28, 1).astype("float32")
    train_images = (train_images - 127.5) / 127.5  # Normalize the images to [-1, 1]

    BUFFER_SIZE, BATCH_SIZE, noise_dim = 60000, 256, 100
    train_dataset = (tf.data.Dataset.from_tensor_slices(train_images)
                     .shuffle(BUFFER_SIZE, seed=args.seed).batch(BATCH_SIZE))

    # ---- the tutorial's models, verbatim
    def make_generator_model():
        model = tf.keras.Sequential()
        model.add(layers.Dense(7 * 7 * 256, use_bias=False, input_shape=(100,)))
        model.add(layers.BatchNormalization())
        model.add(layers.LeakyReLU())
        model.add(layers.Reshape((7, 7, 256)))
        model.add(layers.Conv2DTranspose(128, (5, 5), strides=(1, 1), padding="same", use_bias=False))
        model.add(layers.BatchNormalization())
        model.add(layers.LeakyReLU())
        model.add(layers.Conv2DTranspose(64, (5, 5), strides=(2, 2), padding="same", use_bias=False))
        model.add(layers.BatchNormalization())
        model.add(layers.LeakyReLU())
        model.add(layers.Conv2DTranspose(1, (5, 5), strides=(2, 2), padding="same", use_bias=False, activation="tanh"))
        return model

    def make_discriminator_model():
        model = tf.keras.Sequential()
        model.add(layers.Conv2D(64, (5, 5), strides=(2, 2), padding="same", input_shape=[28, 28, 1]))
        model.add(layers.LeakyReLU())
        model.add(layers.Dropout(0.3))
        model.add(layers.Conv2D(128, (5, 5), strides=(2, 2), padding="same"))
        model.add(layers.LeakyReLU())
        model.add(layers.Dropout(0.3))
        model.add(layers.Flatten())
        model.add(layers.Dense(1))
        return model

    generator = make_generator_model()
    discriminator = make_discriminator_model()
    cross_entropy = tf.keras.losses.BinaryCrossentropy(from_logits=True)

    def discriminator_loss(real_output, fake_output):
        real_loss = cross_entropy(tf.ones_like(real_output), real_output)
        fake_loss = cross_entropy(tf.zeros_like(fake_output), fake_output)
        return real_loss + fake_loss

    def generator_loss(fake_output):
        return cross_entropy(tf.ones_like(fake_output), fake_output)

    generator_optimizer = tf.keras.optimizers.Adam(1e-4)
    discriminator_optimizer = tf.keras.optimizers.Adam(1e-4)

    @tf.function
    def train_step(images):
        noise = tf.random.normal([BATCH_SIZE, noise_dim])
        with tf.GradientTape() as gen_tape, tf.GradientTape() as disc_tape:
            generated_images = generator(noise, training=True)
            real_output = discriminator(images, training=True)
            fake_output = discriminator(generated_images, training=True)
            gen_loss = generator_loss(fake_output)
            disc_loss = discriminator_loss(real_output, fake_output)
        gradients_of_generator = gen_tape.gradient(gen_loss, generator.trainable_variables)
        gradients_of_discriminator = disc_tape.gradient(disc_loss, discriminator.trainable_variables)
        generator_optimizer.apply_gradients(zip(gradients_of_generator, generator.trainable_variables))
        discriminator_optimizer.apply_gradients(zip(gradients_of_discriminator, discriminator.trainable_variables))

    # ---- the loop: a wall-clock budget, sample folders with the clock stopped
    rng = np.random.default_rng(args.seed + 1)

    def write_samples(n: int, name: str) -> str:
        folder = out / f"samples-{name}"
        folder.mkdir(exist_ok=True)
        for start in range(0, n, 500):
            noise = rng.standard_normal((min(500, n - start), noise_dim)).astype("float32")
            images = generator(noise, training=False).numpy()[..., 0]  # (B, 28, 28) in [-1, 1]
            for i, im in enumerate(images):
                Image.fromarray(np.clip(im * 127.5 + 127.5, 0, 255).round().astype("uint8")).save(
                    folder / f"{start + i:05d}.png")
        return str(folder)

    budget, steps, points, excluded = args.minutes * 60, 0, [], 0.0
    next_eval = args.eval_minutes * 60
    start = time.monotonic()
    done = False
    while not done:
        for image_batch in train_dataset:  # the input pipeline's time counts, as in the tutorial's loop
            train_step(image_batch)
            steps += 1
            trained = time.monotonic() - start - excluded
            if trained >= budget:
                done = True
                break
            if trained >= next_eval:
                t = time.monotonic()
                points.append({"train_seconds": trained, "steps": steps,
                               "folder": write_samples(args.samples, f"{len(points):03d}")})
                excluded += time.monotonic() - t
                next_eval += args.eval_minutes * 60
    final = write_samples(args.final_samples, "final")
    points.append({"train_seconds": trained, "steps": steps, "folder": final, "final": True})
    summary = {"model": "TensorFlow DCGAN tutorial", "tensorflow": tf.__version__, "steps": steps,
               "train_seconds": trained, "images_per_second": steps * BATCH_SIZE / trained, "points": points}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
