"""Builds this guest into a WebAssembly component: ``{{name}}.wasm`` here.

    .venv/bin/python build.py

(or ``weir build``). Run it with the interpreter of a virtual environment that
has ``requirements.txt`` installed (``python3 -m venv .venv`` and
``.venv/bin/python -m pip install -r requirements.txt``).
"""

import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    exe = Path(sys.executable).parent / "componentize-py"
    if not exe.exists():
        sys.exit(f"{exe} is missing: run `pip install -r {HERE / 'requirements.txt'}` in the venv")
    started = time.monotonic()
    path = HERE / "{{name}}.wasm"
    # Bundle only the guest, the helper and the standard library, never the
    # build tool's own site-packages.
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    subprocess.run(
        [
            str(exe), "-q",
            "-d", str(HERE / "wit"), "-w", "processor",
            "componentize", "app",
            "-p", str(HERE),
            "-o", str(path),
        ],
        check=True,
        cwd=HERE,
        env=env,
    )
    print(f"built {path} ({path.stat().st_size} bytes, {time.monotonic() - started:.1f} s)", flush=True)


if __name__ == "__main__":
    main()
