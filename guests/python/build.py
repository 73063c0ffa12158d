"""Builds every Python guest in this directory into a WebAssembly component.

    .venv/bin/python build.py <out-dir> [guest...]

A guest is a directory holding ``app.py``; it becomes ``<out-dir>/<name>.wasm``,
targeting world ``processor`` of ``../../wit``, with this directory on the
Python path so that ``import weir_guest`` finds the helper. Run it with the
interpreter of a virtual environment that has ``requirements.txt`` installed.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
WIT = HERE.parent.parent / "wit"


def guests() -> list:
    return sorted(p.parent.name for p in HERE.glob("*/app.py") if not p.parent.name.startswith("."))


def componentize_py() -> str:
    """The componentize-py installed beside this interpreter (in the venv)."""
    exe = Path(sys.executable).parent / "componentize-py"
    if not exe.exists():
        sys.exit(f"{exe} is missing: run `pip install -r {HERE / 'requirements.txt'}` in the venv")
    return str(exe)


def main() -> None:
    if len(sys.argv) < 2:
        sys.exit("usage: build.py <out-dir> [guest...]")
    out = Path(sys.argv[1]).resolve()
    out.mkdir(parents=True, exist_ok=True)
    # Bundle only the guest, the helper and the standard library, never the
    # build tool's own site-packages.
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    for name in sys.argv[2:] or guests():
        started = time.monotonic()
        path = out / f"{name}.wasm"
        subprocess.run(
            [
                componentize_py(), "-q",
                "-d", str(WIT), "-w", "processor",
                "componentize", "app",
                "-p", str(HERE / name), "-p", str(HERE),
                "-o", str(path),
            ],
            check=True,
            cwd=HERE / name,
            env=env,
        )
        size = path.stat().st_size
        print(f"built {path} ({size} bytes, {time.monotonic() - started:.1f} s)", flush=True)


if __name__ == "__main__":
    main()
