"""The ``opencac`` command line. Each command module registers itself; commands are thin
wrappers over library functions that return data."""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="opencac",
    help="OpenCAC: AI-assisted ICD-10-CM / ICD-10-PCS coding with evidence, rules, review and audit.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# Each module defines ``register(app: typer.Typer) -> None``; missing modules are skipped so
# that layers can land independently. Imports inside command bodies keep start-up fast.
_COMMAND_MODULES = (
    "opencac.cli.code",  # code, train, predict, evaluate
    "opencac.cli.codes",  # codes lookup / search
    "opencac.cli.check",  # check CLAIM.json
    "opencac.cli.serve",  # serve, users, audit-log
    "opencac.cli.learn",  # learn, models, thresholds
    "opencac.cli.audit",  # audit ...
    "opencac.cli.batch",  # batch
)

for _name in _COMMAND_MODULES:
    try:
        _mod = importlib.import_module(_name)
    except ModuleNotFoundError as _exc:
        if _exc.name != _name:
            raise
        continue
    _mod.register(app)


def defer_import(name: str) -> bool:
    """Register module ``name`` so that it is executed on first attribute use, not on import
    (``importlib.util.LazyLoader``); False when it is already imported or cannot be found.

    scipy.sparse's array-API shim reads every name numpy exports, which imports numpy.f2py (the
    Fortran wrapper generator: ~50 ms, some 60 regular expressions compiled) on every start of a
    command that touches a sparse matrix; nothing here uses it."""
    import importlib.util
    import sys

    if name in sys.modules:
        return False
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return False
    if spec is None or spec.loader is None:
        return False
    spec.loader = importlib.util.LazyLoader(spec.loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    parent, _, child = name.rpartition(".")
    if parent:  # bound on the package too, as an import would (else numpy.__getattr__ imports it again)
        setattr(importlib.import_module(parent), child, module)
    return True


def main() -> None:  # pragma: no cover - console entry
    import gc
    import sys

    defer_import("numpy.f2py")
    if sys.argv[1:2] == ["code"]:
        # One note in a process that ends with the command: the cyclic garbage collector's
        # passes (and the full one owed when a pause ends) would free nothing that matters.
        gc.disable()
    app()
