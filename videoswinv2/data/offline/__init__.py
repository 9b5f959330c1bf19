"""Tools that write datasets, run once before training rather than inside it: ``prepare``
(re-encode a dataset folder for fast random clips) and ``synthetic`` (a generated motion dataset).

Apart from the run-time modules because they write files in their own process pools; inside
``data`` because they stand on the data layer (decoding, the Kinetics layout) and nothing above.
"""
