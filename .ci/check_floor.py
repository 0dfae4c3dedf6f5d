"""Check constraints/floor.txt against pyproject.toml; print the floor Python.

Each pin ``name==X`` must equal the floor ``name>=X`` that pyproject.toml
declares for that package (in the dependencies or any extra), and every core
dependency must be pinned, so the floor environment tests exactly the
declared floors.  A pin of a package pyproject.toml does not name (a
dependency's dependency) is allowed.  Prints the ``X.Y`` of
``requires-python >= X.Y``: the Python of the floor environment.
"""

import re
import sys
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9_.-]+)\s*(?:\[[^\]]*\])?\s*(.*)$")


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def release(version: str) -> tuple[int, ...]:
    parts = [int(p) for p in version.split(".")]
    while parts and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


def floors(requirements) -> dict[str, str]:
    found = {}
    for requirement in requirements:
        name, spec = REQUIREMENT.match(requirement).groups()
        lower = re.search(r">=\s*([0-9][0-9.]*)", spec)
        if lower:
            found[normalize(name)] = lower.group(1)
    return found


project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
core = floors(project["dependencies"])
declared = {}
for group in [project["dependencies"], *project.get("optional-dependencies", {}).values()]:
    for name, version in floors(group).items():
        declared.setdefault(name, set()).add(release(version))

pins = {}
for line in (ROOT / "constraints" / "floor.txt").read_text().splitlines():
    line = line.split("#")[0].strip()
    if line:
        name, version = line.split("==")
        pins[normalize(name)] = version.strip()

errors = [
    f"{name}: pinned =={pins[name]}, but pyproject.toml declares >= "
    + " and >= ".join(".".join(map(str, v)) for v in sorted(declared[name]))
    for name in pins
    if name in declared and declared[name] != {release(pins[name])}
]
errors += [
    f"{name}: a core dependency (>={version}) not pinned in constraints/floor.txt"
    for name, version in core.items()
    if name not in pins
]
if errors:
    sys.exit("CI: constraints/floor.txt does not match pyproject.toml:\n  " + "\n  ".join(errors))

python = re.fullmatch(r">=\s*(\d+\.\d+)", project["requires-python"].strip())
if not python:
    sys.exit(f"CI: requires-python {project['requires-python']!r} is not of the form >=X.Y")
print(python.group(1))
