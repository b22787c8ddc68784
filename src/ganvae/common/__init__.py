"""Small foundations every layer uses: files (atomic writes, checksums, output checks), the machine (seeding,
device, precision), the memory guard, pixel value ranges and the named seed streams. Nothing here imports
a model, a dataset or the trainer."""
