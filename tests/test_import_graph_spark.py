"""PySpark is an optional vendor library: only the Spark engine's package (warehouse/spark/) imports
it, and only inside functions (importing the package without PySpark works; the session factory
says what to install)."""
from __future__ import annotations

import ast

from tests.test_import_graph import _graph, _modules


def test_only_warehouse_spark_imports_pyspark():
    _edges, raw = _graph()
    users = {name for name, imported in raw.items() if any(m.split(".")[0] == "pyspark" for m in imported)}
    assert users, "the check must see the Spark engine importing pyspark"
    assert all(name.startswith("warehouse.spark.") for name in users), sorted(users)


def test_pyspark_is_never_imported_at_module_level():
    for name, path in _modules().items():
        tree = ast.parse(path.read_text())
        for node in tree.body:
            if isinstance(node, ast.Import):
                assert not any(a.name.split(".")[0] == "pyspark" for a in node.names), name
            elif isinstance(node, ast.ImportFrom):
                assert (node.module or "").split(".")[0] != "pyspark", name


def test_the_spark_engine_package_imports_without_pyspark(monkeypatch):
    import builtins
    import importlib
    import sys

    real = builtins.__import__

    def no_pyspark(name, *a, **kw):
        if name.split(".")[0] == "pyspark":
            raise ImportError("no pyspark here")
        return real(name, *a, **kw)

    monkeypatch.setattr(builtins, "__import__", no_pyspark)
    for mod in [m for m in sys.modules if m.startswith("warehouse.spark")]:
        monkeypatch.delitem(sys.modules, mod)
    for mod in ("warehouse.spark.session", "warehouse.spark.load", "warehouse.spark.attribute",
                "warehouse.spark.run", "warehouse.spark.validate"):
        importlib.import_module(mod)
    from warehouse.spark.session import SparkMissing, require_pyspark

    try:
        require_pyspark()
    except SparkMissing as exc:
        assert "pip install" in str(exc)
    else:
        raise AssertionError("require_pyspark must refuse without pyspark")
