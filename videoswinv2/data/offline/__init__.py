"""Tools that write datasets, run once before training rather than inside it: ``prepare``
(re-encode a dataset folder for fast random clips) and ``synthetic`` (a generated motion dataset).

They live apart from the modules that load data at run time (annotations, decoding, clip
planning and reading, datasets, the data module) because they write files, run in their own
process pools and are reached from commands (``videoswinv2 prepare``, ``make-synthetic``); a
sub-package of ``data`` rather than a top-level ``tools`` package because they stand on the data
layer (decoding, the Kinetics file layout) and nothing above it. The data module calls
``make_synthetic_dataset`` only for its ``synthetic`` option, in ``prepare_data``.
"""
