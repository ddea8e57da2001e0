"""Packaging: the wheel holds the package and its runtime needs only; importing touches nothing.

The wheel is built offline from a copy of the sources (`pip wheel --no-build-isolation`, with
the setuptools and wheel of this environment), so the checkout is left untouched.
"""
import ast
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from email.parser import Parser
from importlib.metadata import packages_distributions, requires
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import progress_service

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "progress_service"
# Never a runtime requirement, whether or not requirements-dev.txt lists them yet.
BUILD_AND_TEST = {"secantusdb", "pytest", "mongomock", "setuptools", "wheel"}
SECRET = "k" * 48
UNREACHABLE = "mongodb://127.0.0.1:9/lms"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """progress_service's wheel, built offline from a copy of the sources."""
    source = tmp_path_factory.mktemp("source")
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        if (ROOT / name).exists():
            shutil.copy(ROOT / name, source / name)
    shutil.copytree(PACKAGE, source / "progress_service", ignore=shutil.ignore_patterns("__pycache__"))
    dist = tmp_path_factory.mktemp("dist")
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation",
         "--no-index", "--disable-pip-version-check", "--quiet", "--wheel-dir", str(dist)],
        capture_output=True, text=True, timeout=300,
    )
    assert built.returncode == 0, (
        "building the wheel failed (setuptools and wheel must be installed: requirements-dev.txt)\n"
        + built.stdout + built.stderr)
    [path] = dist.glob("*.whl")
    return path


def metadata(wheel_path):
    """The wheel's METADATA, parsed."""
    with zipfile.ZipFile(wheel_path) as archive:
        [name] = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        return Parser().parsestr(archive.read(name).decode())


def runtime_requirements(wheel_path):
    """Requires-Dist entries that apply without any extra."""
    requirements = [Requirement(line) for line in metadata(wheel_path).get_all("Requires-Dist")]
    return [req for req in requirements if req.marker is None]


def pins(path):
    """name -> pinned version of a requirements file (its `-r` includes ignored)."""
    found = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            requirement = Requirement(line)
            [spec] = requirement.specifier
            found[canonicalize_name(requirement.name)] = spec.version
    return found


def test_the_wheel_requires_the_runtime_only(wheel):
    """No SecantusDB, test tool or build tool; each runtime range admits the version we pin."""
    pinned = pins(ROOT / "requirements.txt")
    dev_only = BUILD_AND_TEST | (set(pins(ROOT / "requirements-dev.txt")) - set(pinned))
    requirements = runtime_requirements(wheel)
    every = {canonicalize_name(Requirement(line).name) for line in metadata(wheel).get_all("Requires-Dist")}
    assert requirements and not every & dev_only
    for requirement in requirements:
        name = canonicalize_name(requirement.name)
        assert name in pinned, f"{name} is required by the package but not pinned in requirements.txt"
        assert requirement.specifier.contains(pinned[name]), f"{name}=={pinned[name]} is outside {requirement}"


def _module_level_imports(path):
    """Top-level module names imported at module level (not inside functions) by a file."""
    names = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_every_module_the_package_imports_is_a_declared_dependency(wheel):
    """Importing progress_service needs nothing that `pip install .` would not bring."""
    declared = {canonicalize_name(req.name) for req in runtime_requirements(wheel)}
    # What each declared distribution brings along (Flask brings werkzeug, click, ...).
    brought = set(declared)
    pending = list(declared)
    while pending:
        for line in requires(pending.pop()) or ():
            requirement = Requirement(line)
            name = canonicalize_name(requirement.name)
            if name not in brought and (requirement.marker is None or requirement.marker.evaluate({"extra": ""})):
                brought.add(name)
                pending.append(name)
    providers = packages_distributions()
    for path in PACKAGE.rglob("*.py"):
        for module in _module_level_imports(path) - set(sys.stdlib_module_names) - {"progress_service"}:
            distributions = {canonicalize_name(d) for d in providers.get(module, [])}
            assert distributions & brought, f"{path.relative_to(ROOT)} imports {module}, not a runtime dependency"


def test_the_wheel_holds_the_package_and_its_version(wheel):
    """Only progress_service (no tests, examples, bench); the version is progress_service's."""
    with zipfile.ZipFile(wheel) as archive:
        tops = {name.split("/")[0] for name in archive.namelist()}
    version = progress_service.__version__
    assert tops == {"progress_service", f"progress_service-{version}.dist-info"}
    assert metadata(wheel)["Version"] == version
    assert wheel.name.startswith(f"progress_service-{version}-")


def test_the_wheel_holds_the_player_module_the_app_serves(wheel):
    """The player module and the demo's script are package data: an installed app serves them."""
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        module = archive.read("progress_service/standalone/player/progress-player.js").decode()
    assert "progress_service/standalone/player/demo.js" in names
    assert module == (PACKAGE / "standalone" / "player" / "progress-player.js").read_text()


def test_the_version_is_written_in_one_place():
    """progress_service.__version__ is the only place; setup.cfg reads it from there."""
    assert re.search(r"^version = attr: progress_service\.__version__$", (ROOT / "setup.cfg").read_text(), re.M)
    assert not re.search(r"^\s*version\s*=", (ROOT / "pyproject.toml").read_text(), re.M)
    literal = re.compile(r"""["']""" + re.escape(progress_service.__version__) + r"""["']""")
    written = [path.relative_to(ROOT) for path in [*PACKAGE.rglob("*.py"), ROOT / "setup.cfg", ROOT / "pyproject.toml"]
               if literal.search(path.read_text())]
    assert written == [Path("progress_service/__init__.py")]


# Run in a fresh interpreter: records every socket operation, thread and file written while
# the package is imported, the standalone app is created and the extension is mounted.
PROBE = r"""
import json, os, sys, threading, time

seen = []
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND


def audit(event, args):
    if event.startswith("socket.") or event in ("subprocess.Popen", "os.system", "os.mkdir"):
        seen.append(event)
    elif event == "open":
        mode, flags = args[1], args[2]
        if (isinstance(mode, str) and set(mode) & set("wax+")) or (mode is None and flags & WRITE_FLAGS):
            seen.append(f"open for writing: {args[0]}")


sys.addaudithook(audit)
import progress_service
from progress_service import create_app
from progress_service.progress import Progress
from flask import Flask

seen.append("-- imported")
SECRET, URI = os.environ["PROBE_SECRET"], os.environ["PROBE_URI"]
create_app({"PROGRESS_ENV": "production", "JWT_SECRET_KEY": SECRET, "MONGODB_URI": URI})
seen.append("-- create_app")
host = Flask("host")
host.config.update(JWT_SECRET_KEY=SECRET, MONGODB_URI=URI, PROGRESS_DB_ALIAS="hostdb")
Progress(host)
seen.append("-- mounted")
time.sleep(0.3)  # a driver's monitor thread would have connected by now
print(json.dumps({
    "seen": seen,
    "threads": [t.name for t in threading.enumerate() if t is not threading.main_thread()],
    "dev_modules": sorted(m for m in ("secantus", "mongomock", "pytest") if m in sys.modules),
    "file": progress_service.__file__,
}))
"""


def run_probe(cwd, pythonpath=None):
    """Run PROBE in a fresh interpreter; its JSON report."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("MONGODB_", "JWT_", "PROGRESS_", "PYTHON"))}
    env.update(PYTHONDONTWRITEBYTECODE="1", PROBE_SECRET=SECRET, PROBE_URI=UNREACHABLE)
    if pythonpath:
        env["PYTHONPATH"] = str(pythonpath)
    done = subprocess.run([sys.executable, "-B", "-c", PROBE], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_importing_creating_and_mounting_open_no_connection():
    """No socket, no thread, no file written, no dev tool imported: gunicorn may fork after."""
    report = run_probe(ROOT)
    assert report["seen"] == ["-- imported", "-- create_app", "-- mounted"]
    assert report["threads"] == []
    assert report["dev_modules"] == []
    assert Path(report["file"]).resolve() == PACKAGE / "__init__.py"


def test_the_installed_wheel_works_on_its_own(wheel, tmp_path):
    """Installed from the wheel, away from the checkout, the package imports and mounts alike."""
    target = tmp_path / "site"
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--disable-pip-version-check",
         "--quiet", "--target", str(target), str(wheel)],
        capture_output=True, text=True, timeout=300,
    )
    assert installed.returncode == 0, installed.stderr
    report = run_probe(tmp_path, pythonpath=target)
    assert Path(report["file"]).resolve() == (target / "progress_service" / "__init__.py").resolve()
    assert report["seen"] == ["-- imported", "-- create_app", "-- mounted"]
