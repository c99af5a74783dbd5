"""Package layout that pyproject.toml cannot express on its own.

The SQL migrations live at the top level (``migrations/``, as the design fixes)
and ship inside the package as ``medic.migrations``, so that a non-editable
``pip install .`` can still run ``medic migrate``.
"""
from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["medic", "medic.*", "services", "services.*", "gateway", "gateway.*",
                                    "medic_cli", "medic_cli.*"])
    + ["medic.migrations"],
    package_dir={"medic.migrations": "migrations"},
    package_data={"medic.migrations": ["*.sql"],
                  # the web console's templates and static files (htmx, CSS, its script)
                  "gateway.console": ["templates/*.html", "static/*"]},
)
