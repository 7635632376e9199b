"""Image data: sources, the seeded split, the decoded-once cache, `Preprocess` and `ImageDataModule`.

A source is one string: a path to a ``CIFAR-10-images-master`` folder or
``.zip``, a ``cifar-10-batches-py`` folder, any image folder (or zip of one),
the word ``cifar10`` (torchvision's download) or ``digits`` (scikit-learn's
bundled 8x8 digits, offline).

- `sources`: what a path holds (class folders, train/test parts); `arrays`: array sources.
- `decode`: bytes to uint8 images; `cache`: the decoded-once, content-keyed cache.
- `load`: a source decoded into the cache; `split`: the seeded, stratified split.
- `datasets`: the cached and per-file datasets, the seeded sampler.
- `transforms`: `Preprocess`, where pixels become model input, and the presets.
- `datamodule`: `ImageDataModule`, uint8 batches transformed on the device.

This package re-exports nothing: `zoo data` reads sources without Lightning, and each module
imports only what its job needs.
"""
