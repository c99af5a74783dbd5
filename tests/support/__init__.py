"""Helpers for the tests and the benchmarks (``bench/``): servers, receivers,
databases, events, processes. Fixtures live in the ``conftest.py`` files and are
built from these.

Nothing here imports pytest or another test-only package: the benchmarks run on
a plain ``pip install .`` and import these modules too
(``tests/unit/test_support_standalone.py`` holds the package to that).
"""
