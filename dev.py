#!/usr/bin/env python3
"""Set-up and entry points for a fresh checkout; needs only Python 3.11+ with pip and venv.

    python3 dev.py demo     # create .venv, install everything, run the end-to-end demo
    python3 dev.py test     # the same set-up, then the whole test suite
    python3 dev.py setup    # only the set-up

The set-up is skipped when nothing it installs from has changed since the last run.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".omnilink-installed"


def adapters() -> list[Path]:
    return sorted(p for p in (ROOT / "adapters").iterdir() if (p / "pyproject.toml").is_file())


def fingerprint() -> str:
    digest = hashlib.sha256()
    for path in [ROOT / "pyproject.toml", *(a / "pyproject.toml" for a in adapters())]:
        digest.update(path.read_bytes())
    return digest.hexdigest()


def run(*cmd: str | Path) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run([str(c) for c in cmd], cwd=ROOT, check=True)


def setup() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - dev.py may be started by an older python3
        sys.exit(f"omnilink needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    if not (BIN / "python").exists():
        print(f"creating {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    if STAMP.exists() and STAMP.read_text() == fingerprint():
        return
    pip = [BIN / "python", "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    editable: list[str | Path] = ["-e", f"{ROOT}[dev]"]
    for adapter in adapters():
        text = (adapter / "pyproject.toml").read_text()
        extra = "[test]" if "\ntest = [" in text or "\ntest=[" in text else ""
        editable += ["-e", f"{adapter}{extra}"]
    run(*pip, *editable)
    STAMP.write_text(fingerprint())


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else "help"
    rest = argv[2:]
    if command == "setup":
        setup()
        return 0
    if command == "demo":
        setup()
        return subprocess.run([str(BIN / "omnilink"), "demo", *rest], cwd=ROOT).returncode
    if command == "test":
        setup()
        code = subprocess.run([str(BIN / "python"), "-m", "pytest", *rest], cwd=ROOT).returncode
        return code
    print(__doc__)
    return 0 if command == "help" else 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
