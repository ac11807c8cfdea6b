"""The Dockerfile against the project it packages.

There is no Docker engine on the project's machines, so the image cannot be built here.
What can be checked is that the recipe matches the project: every file it copies exists,
every package is copied, the roles it documents are the real console scripts, the
dependencies come only from the hash-pinned locks and those locks cover pyproject.toml,
the interpreter satisfies ``requires-python``, the ports are the components' defaults,
and the image runs as a non-root user. (The recipe's RUN commands were also run by hand
outside Docker, in two fresh virtual environments: the locks install with
``--require-hashes`` and the three console scripts start.)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import tomllib

from adapter.config import ServerSettings
from exporter.config import DEFAULT_PORT

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str
    stage: int


def instructions(text: str) -> list[Instruction]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    joined: list[str] = []
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        joined.append(pending + stripped)
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    result = []
    stage = -1
    for line in joined:
        keyword, _, arguments = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        result.append(Instruction(keyword, arguments.strip(), stage))
    return result


@pytest.fixture(scope="module")
def dockerfile() -> list[Instruction]:
    return instructions((REPO / "Dockerfile").read_text())


@pytest.fixture(scope="module")
def pyproject() -> dict[str, object]:
    with (REPO / "pyproject.toml").open("rb") as file:
        return tomllib.load(file)


def final_stage(dockerfile: list[Instruction]) -> list[Instruction]:
    last = max(instruction.stage for instruction in dockerfile)
    return [instruction for instruction in dockerfile if instruction.stage == last]


def test_the_parser_joins_continuations_and_skips_comments() -> None:
    parsed = instructions("# c\nFROM a AS b\nRUN x \\\n  # inner\n    y\nUSER 1:1\n")
    assert [(i.keyword, i.arguments, i.stage) for i in parsed] == [
        ("FROM", "a AS b", 0),
        ("RUN", "x  y", 0),
        ("USER", "1:1", 0),
    ]


def test_every_copied_file_exists_and_every_package_is_copied(
    dockerfile: list[Instruction], pyproject: dict[str, object]
) -> None:
    copied: set[str] = set()
    for instruction in dockerfile:
        if instruction.keyword == "ADD":
            pytest.fail("ADD fetches and unpacks implicitly; use COPY (and RUN for downloads)")
        if instruction.keyword != "COPY" or instruction.arguments.startswith("--from"):
            continue
        *sources, _destination = instruction.arguments.split()
        for source in sources:
            assert (REPO / source).exists(), f"COPY {source}: no such file in the repository"
            copied.add(source.rstrip("/"))
    tool = pyproject["tool"]
    assert isinstance(tool, dict)
    packages = tool["setuptools"]["packages"]["find"]["include"]
    for pattern in packages:
        assert pattern.rstrip("*") in copied, f"the package {pattern} is not copied into the image"
    assert {"pyproject.toml", "requirements.lock", "requirements-build.lock"} <= copied


def test_dependencies_come_only_from_the_hash_pinned_locks(dockerfile: list[Instruction]) -> None:
    installs = [
        instruction.arguments
        for instruction in dockerfile
        if instruction.keyword == "RUN" and "pip install" in instruction.arguments
    ]
    assert installs, "the image installs nothing with pip"
    for command in installs:
        for part in command.split("&&"):
            if "pip install" not in part:
                continue
            hashed = "--require-hashes" in part and re.search(r"-r \S+\.lock", part)
            local_wheel = "--no-deps" in part and "--no-index" in part and ".whl" in part
            assert hashed or local_wheel, f"an unpinned install: {part.strip()}"


def test_the_locks_pin_every_dependency_of_pyproject(pyproject: dict[str, object]) -> None:
    project = pyproject["project"]
    build = pyproject["build-system"]
    assert isinstance(project, dict)
    assert isinstance(build, dict)
    for lock_name, requirements in (
        ("requirements.lock", project["dependencies"]),
        ("requirements-build.lock", build["requires"]),
    ):
        text = (REPO / lock_name).read_text()
        pinned = dict(re.findall(r"^([a-z0-9.-]+)==(\S+) \\$", text, flags=re.MULTILINE))
        hashes = re.findall(r"--hash=sha256:[0-9a-f]{64}", text)
        assert len(hashes) >= len(pinned) > 0, f"{lock_name}: every pin needs a hash"
        for requirement in requirements:
            name = re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower().replace("_", "-")
            assert name in pinned, (
                f"{name} is a dependency in pyproject.toml but not in {lock_name}; run "
                "python scripts/lock_dependencies.py"
            )


def test_the_roles_are_the_real_console_scripts(
    dockerfile: list[Instruction], pyproject: dict[str, object]
) -> None:
    project = pyproject["project"]
    assert isinstance(project, dict)
    scripts = set(project["scripts"])
    header = (REPO / "Dockerfile").read_text().split("ARG", 1)[0]
    for script in scripts:
        assert re.search(rf"#\s+{re.escape(script)}\s", header), f"{script} is not documented"
    entrypoints = [i.arguments for i in final_stage(dockerfile) if i.keyword == "ENTRYPOINT"]
    assert len(entrypoints) == 1
    assert re.fullmatch(r'\["([a-z-]+)"\]', entrypoints[0])
    assert entrypoints[0][2:-2] in scripts


def test_the_interpreter_satisfies_requires_python(
    dockerfile: list[Instruction], pyproject: dict[str, object]
) -> None:
    image = next(i.arguments for i in dockerfile if i.keyword == "ARG")
    match = re.fullmatch(r"PYTHON_IMAGE=python:(\d+)\.(\d+)-slim-\w+", image)
    assert match, f"the base image should be an official slim Python image, got {image}"
    project = pyproject["project"]
    assert isinstance(project, dict)
    minimum = re.fullmatch(r">=(\d+)\.(\d+)", project["requires-python"])
    assert minimum
    assert tuple(map(int, match.groups())) >= tuple(map(int, minimum.groups()))
    lock_script = (REPO / "scripts" / "lock_dependencies.py").read_text()
    assert f'PYTHON_VERSION = "{match[1]}.{match[2]}"' in lock_script, (
        "the locks are resolved for another Python than the image's"
    )


def test_the_image_runs_as_a_non_root_user_and_exposes_the_default_ports(
    dockerfile: list[Instruction],
) -> None:
    runtime = final_stage(dockerfile)
    users = [i.arguments for i in runtime if i.keyword == "USER"]
    assert users, "the runtime stage never leaves root"
    uid, _, gid = users[-1].partition(":")
    why = "USER must be numeric and non-root, so that runAsNonRoot can verify it"
    assert uid.isdigit(), why
    assert gid.isdigit(), why
    assert int(uid) != 0, why
    assert int(gid) != 0, why
    exposed = {int(port) for i in runtime if i.keyword == "EXPOSE" for port in i.arguments.split()}
    assert exposed == {DEFAULT_PORT, ServerSettings().port}
