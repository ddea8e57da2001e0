"""The lowest versions setup.cfg allows, as pins: `make test-lowest` installs and tests them.

    python3 scripts/lowest_requirements.py [--setup-cfg setup.cfg] [--dev requirements-dev.txt]

Reads `install_requires` and every `[options.extras_require]` entry of setup.cfg and prints
each dependency pinned at its lower bound (`>=X` or `~=X` becomes `==X`, `==X` stays), so the
lowest set is always the one setup.cfg publishes. A dependency without a lower bound is an
error: setup.cfg must give it one. With --dev, the lines of that requirements file follow,
less its `-r`/`--requirement` includes (the newest runtime pins) and less any package the
lowest set already pins, so one pip install resolves the lowest runtime set together with
the dev/test tools. Standard library only: it runs before any virtual environment exists.
"""
import argparse
import configparser
import re
import sys

NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*(.*)$")
CLAUSE = re.compile(r"^\s*(===|~=|==|!=|<=|>=|<|>)\s*([^\s,]+)\s*$")


def canonical(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def lines_of(value):
    """The requirement lines of a multi-line setup.cfg value (blank lines and comments dropped)."""
    found = []
    for line in value.splitlines():
        line = line.split(" #", 1)[0].strip()
        if line and not line.startswith("#"):
            found.append(line)
    return found


def lowest_pin(line):
    """`name[extras]==lower; marker` for one requirement of setup.cfg; SystemExit if unbounded."""
    requirement, _, marker = line.partition(";")
    match = NAME.match(requirement)
    if not match or "@" in requirement:
        sys.exit(f"lowest_requirements: cannot read the requirement {line!r} in setup.cfg")
    name, extras, specifiers = match.group(1), match.group(2) or "", match.group(3).strip()
    clauses = []
    for part in filter(None, (p.strip() for p in specifiers.split(","))):
        clause = CLAUSE.match(part)
        if not clause:
            sys.exit(f"lowest_requirements: cannot read {part!r} of {line!r} in setup.cfg")
        clauses.append((clause.group(1), clause.group(2)))
    lower = [version for op, version in clauses if op in (">=", "~=", "==", "===") and "*" not in version]
    if not lower:
        sys.exit(f"lowest_requirements: {name} has no lower bound in setup.cfg ({line!r}): "
                 "give it one (`>=X`), so the lowest supported version is tested")
    if len(lower) > 1:
        sys.exit(f"lowest_requirements: {name} has more than one lower bound in setup.cfg ({line!r})")
    if ("!=", lower[0]) in clauses:
        sys.exit(f"lowest_requirements: {name}'s lower bound {lower[0]} is excluded by its own range ({line!r})")
    pin = f"{name}{extras}=={lower[0]}"
    return name, (f"{pin}; {marker.strip()}" if marker.strip() else pin)


def lowest(setup_cfg):
    """[(name, pin)] for install_requires, then each extra, in setup.cfg's order."""
    config = configparser.ConfigParser(interpolation=None)
    if not config.read(setup_cfg):
        sys.exit(f"lowest_requirements: cannot read {setup_cfg}")
    lines = lines_of(config.get("options", "install_requires", fallback=""))
    if not lines:
        sys.exit(f"lowest_requirements: no install_requires in {setup_cfg}")
    if config.has_section("options.extras_require"):
        for extra in config.options("options.extras_require"):
            lines += lines_of(config.get("options.extras_require", extra))
    pins, seen = [], set()
    for line in lines:
        name, pin = lowest_pin(line)
        if canonical(name) not in seen:
            seen.add(canonical(name))
            pins.append((name, pin))
    return pins


def dev_lines(path, pinned):
    """The dev requirements file's lines, less its includes and the packages already pinned."""
    kept = []
    with open(path) as handle:
        for raw in handle:
            line = raw.split(" #", 1)[0].strip()
            if not line or line.startswith("#"):
                continue
            if re.match(r"^(-r|--requirement)(\s|=|$)", line) or re.match(r"^-r\S", line):
                continue  # the runtime pins at their newest: the lowest set stands in for them
            match = NAME.match(line)
            if not line.startswith("-") and match and canonical(match.group(1)) in pinned:
                continue
            kept.append(line)
    return kept


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--setup-cfg", default="setup.cfg")
    parser.add_argument("--dev", metavar="REQUIREMENTS", help="append this file's dev/test pins")
    args = parser.parse_args(argv)
    pins = lowest(args.setup_cfg)
    out = [f"# The lowest versions {args.setup_cfg} allows (scripts/lowest_requirements.py)."]
    out += [pin for _, pin in pins]
    if args.dev:
        out.append(f"# The dev/test tools of {args.dev}, without its runtime pins.")
        out += dev_lines(args.dev, {canonical(name) for name, _ in pins})
    print("\n".join(out))


if __name__ == "__main__":
    main()
