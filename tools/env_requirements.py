"""Print the pip section of environment.yml as a requirements file with absolute paths.

environment.yml is the single list of dependencies; conda reads it directly, and tools/lmbook
feeds this output to pip for the project-local virtual environment. Relative paths in the pip
section (``-c constraints.txt``, ``-e .``) are made absolute so the output works from anywhere.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path


def pip_requirements(env_file: Path) -> list[str]:
    lines = env_file.read_text().splitlines()
    out, in_pip, pip_indent = [], False, None
    for line in lines:
        if not line.strip() or line.strip().startswith("#"):
            continue
        match = re.match(r"^(\s*)- pip:\s*$", line)
        if match:
            in_pip, pip_indent = True, len(match.group(1))
            continue
        if in_pip:
            item = re.match(r"^(\s*)- (.+?)\s*$", line)
            if not item or len(item.group(1)) <= pip_indent:
                in_pip = False
                continue
            out.append(item.group(2))
    if not out:
        raise SystemExit(f"{env_file}: no pip section found")
    root = env_file.resolve().parent
    fixed = []
    for req in out:
        if req.startswith(("-c ", "-r ")):
            flag, path = req.split(None, 1)
            req = f"{flag} {(root / path).resolve()}"
        elif req.startswith("-e "):
            req = f"-e {(root / req.split(None, 1)[1]).resolve()}"
        fixed.append(req)
    return fixed


if __name__ == "__main__":
    print("\n".join(pip_requirements(Path(sys.argv[1] if len(sys.argv) > 1 else "environment.yml"))))
