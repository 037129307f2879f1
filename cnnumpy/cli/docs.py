"""``cnnumpy docs``: build, or serve, the documentation site of a source checkout with MkDocs.

The site's tutorials are notebooks executed at every build, so the build runs ``mkdocs`` in a
child process of this same interpreter: the notebooks' kernel then imports the cnnumpy this
command belongs to.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

# What `mkdocs.yml` needs, as the import names of the `docs` extra's packages.
REQUIRED = {
    "mkdocs": "mkdocs",
    "material": "mkdocs-material",
    "mkdocs_jupyter": "mkdocs-jupyter",
    "mkdocstrings_handlers.python": "mkdocstrings-python",
    "jupytext": "jupytext",
    "ipykernel": "ipykernel",
}
INSTALL_HINT = "pip install -e '.[docs]' torch==2.13.0"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "docs",
        help=f"build the documentation site into site/ (needs the docs extra: {INSTALL_HINT})",
        description=(
            "Build the documentation site with `mkdocs build --strict`: the pages, the API "
            "reference from the docstrings, and the tutorials, which are executed as notebooks "
            "(a few minutes on two cores; a cell that raises fails the build). With --serve, "
            "serve it at --dev-addr instead and rebuild on every change. Needs a source "
            "checkout (mkdocs.yml and docs/) and the docs extra, with torch, which the "
            f"tutorials compare against: {INSTALL_HINT}"
        ),
    )
    p.add_argument(
        "--serve",
        action="store_true",
        help="serve the site and rebuild it on changes instead of writing it",
    )
    p.add_argument(
        "--dev-addr",
        default="127.0.0.1:8000",
        help="address and port to serve at (default 127.0.0.1:8000)",
    )
    p.add_argument(
        "--site-dir",
        type=Path,
        default=None,
        help="where to write the site (default: site/ beside mkdocs.yml)",
    )
    p.add_argument(
        "--config-file",
        type=Path,
        default=None,
        help="the MkDocs configuration (default: the source checkout's mkdocs.yml)",
    )
    p.set_defaults(func=run)


def find_config(explicit: Path | None) -> Path:
    """``explicit`` if given, else the ``mkdocs.yml`` of the checkout this package was installed
    from (editable install), else the one in the current directory."""
    if explicit is not None:
        if not explicit.is_file():
            raise ValueError(f"no such configuration file: {explicit}")
        return explicit.resolve()
    for candidate in (Path(__file__).resolve().parents[2] / "mkdocs.yml", Path("mkdocs.yml")):
        if candidate.is_file():
            return candidate.resolve()
    raise ValueError(
        "no mkdocs.yml found: the site is built from a source checkout (run this command from "
        "its root, or pass --config-file)"
    )


def missing_packages() -> list[str]:
    """The distributions of the docs extra whose modules cannot be imported."""
    missing = []
    for module, distribution in REQUIRED.items():
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:  # the parent package of a dotted name is missing
            found = False
        if not found:
            missing.append(distribution)
    return missing


def run(args: argparse.Namespace) -> int:
    missing = missing_packages()
    if missing:
        names = ", ".join(missing)
        raise ValueError(f"{names} not installed; install the docs extra: {INSTALL_HINT}")
    config = find_config(args.config_file)
    action = "serve" if args.serve else "build"
    command = [sys.executable, "-m", "mkdocs", action, "--strict", "--config-file", str(config)]
    if args.serve:
        command += ["--dev-addr", args.dev_addr]
    elif args.site_dir is not None:
        command += ["--site-dir", str(args.site_dir.resolve())]
    # Material prints a banner about MkDocs 2 on every build; it is not about this site.
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    # From the checkout's root, where mkdocs.yml's relative paths (docs/, the griffe extension)
    # point; the tutorials' kernels start there too.
    done = subprocess.run(command, cwd=config.parent, env=env, check=False)
    if done.returncode == 0 and not args.serve:
        site = args.site_dir.resolve() if args.site_dir is not None else config.parent / "site"
        print(f"site written to {site} (open {site / 'index.html'})")
    return done.returncode
