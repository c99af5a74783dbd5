"""The ``medic`` program: the CLI, ``medic up`` / ``serve`` / ``migrate``, the wiring of each
process, and docs and code generation. It sits above everything: it may import the runtime
(``medic``), the services and the gateway; none of them imports it (tests/unit/test_layers.py)."""
