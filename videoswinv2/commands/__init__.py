"""The ``videoswinv2`` command-line tools, thin over the library: each module has
``add_arguments(parser)`` and ``run(args) -> exit code``; ``videoswinv2.cli`` lists them."""
