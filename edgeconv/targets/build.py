"""Generate code for a layer set and build the firmware for a board, with a cache.

The cache key is the layer-set hash plus a digest of everything that shapes the binary
but not the hash (firmware sources, templates, code generator): a repeated open of the
same layers on the same board reuses the binary.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from edgeconv import progress, resources
from edgeconv.targets.boards import Board

_PACKAGE_DIR = Path(__file__).resolve().parent.parent


def cache_root() -> Path:
    """``$EDGECONV_CACHE_DIR``, else ``~/.cache/edgeconv``."""
    env = os.environ.get("EDGECONV_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "edgeconv"


def _sources_digest() -> str:
    """Digest of the firmware sources, the templates, the package's Python modules (the
    code generator and everything it uses), ``$EXTRA_CFLAGS`` and ``$HOST_CC``."""
    h = hashlib.sha256(_files_digest().encode())
    for var in ("EXTRA_CFLAGS", "HOST_CC"):  # the firmware Makefile reads both from the env
        h.update(f"{var}={os.environ.get(var, '')}\n".encode())
    return h.hexdigest()[:12]


@functools.cache
def _files_digest() -> str:
    """Digest of the files, read once per process: the code this process runs is the code
    it imported, so a source file edited while it runs (a checkout, a merge) must not
    file this process's builds under the new sources' key."""
    h = hashlib.sha256()
    files = [f for root in (resources.firmware_dir(), resources.templates_dir())
             for f in sorted(root.rglob("*")) if f.is_file()]
    files += sorted(_PACKAGE_DIR.rglob("*.py"))
    for f in files:
        if "__pycache__" in f.parts:
            continue
        h.update(str(f.relative_to(f.anchor)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def firmware_binary(build_dir: Path, board: Board) -> Path:
    """Path of the built image in ``build_dir``."""
    return build_dir / ("firmware" if board.name == "native" else "firmware.elf")


# Characters make handles in file names: anything else (a space, ':', '#', '$', '%',
# non-ASCII...) is reached through a symbolic link of plain characters instead.
_MAKE_SAFE_PATH = re.compile(r"[A-Za-z0-9_./+,@~-]*\Z")


def _make_safe(path: Path) -> bool:
    return bool(_MAKE_SAFE_PATH.match(str(path)))


OPTS = ("O0", "O1", "O2", "O3", "Os")
DEFAULT_OPT = "O2"  # the firmware Makefile's own default


def check_opt(opt: object) -> str:
    """``opt`` if it is an optimisation level the firmware build takes, else ValueError."""
    if opt not in OPTS:
        raise ValueError(f"opt={opt!r}: allowed are {', '.join(OPTS)}")
    return str(opt)


def make(board: Board, cpu: str, gen_dir: Path, build_dir: Path, *,
         opt: str = DEFAULT_OPT) -> Path:
    """Runs the firmware Makefile as a user would (``make -f firmware/Makefile``); returns
    the image path.

    GNU make cannot name files whose path holds a space (it splits them into two) and
    mishandles ':', '#', '$' or '%'; when the firmware, ``gen_dir`` or ``build_dir`` path
    holds such a character, make is given links of plain names to the three folders, made
    in a fresh temporary folder (removed afterwards).
    """
    build_dir.mkdir(parents=True, exist_ok=True)
    paths = {"fw": resources.firmware_dir().resolve(), "gen": gen_dir.resolve(),
             "build": build_dir.resolve()}
    staging = None
    if not all(_make_safe(path) for path in paths.values()):
        base = tempfile.gettempdir()
        staging = Path(tempfile.mkdtemp(prefix="edgeconv-make-",
                                        dir=base if _make_safe(Path(base)) else "/tmp"))
        if not _make_safe(staging):
            shutil.rmtree(staging, ignore_errors=True)
            raise RuntimeError(f"no temporary folder with a plain path for make ({staging})")
        for name, path in paths.items():
            (staging / name).symlink_to(path, target_is_directory=True)
            paths[name] = staging / name
    cmd = ["make", "-s", "-f", str(paths["fw"] / "Makefile"), f"BOARD={board.name}",
           f"CPU={cpu}", f"GEN_DIR={paths['gen']}", f"BUILD_DIR={paths['build']}",
           f"OPT=-{check_opt(opt)}", f"-j{os.cpu_count() or 1}"]
    if board.name == "native":
        cmd.remove(f"CPU={cpu}")
    try:
        with progress.working(f"building firmware for {board.name} ({cpu}, -{opt})"):
            res = subprocess.run(cmd, capture_output=True, text=True, cwd=paths["build"])
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)  # the links only, not their targets
    if res.returncode != 0:
        raise RuntimeError(f"firmware build failed ({' '.join(cmd)}):\n{res.stdout}{res.stderr}")
    return firmware_binary(build_dir, board)


def build_for_layers(layers, board: Board, cpu: str, *, layer_hash: str,
                     codegen_options: dict, opt: str = DEFAULT_OPT) -> Path:
    """Generates the layers' C and builds the firmware at ``-<opt>``, or reuses a cached
    build."""
    from edgeconv import codegen

    key = f"{board.name}-{cpu}-{check_opt(opt)}-{layer_hash}-{_sources_digest()}"
    final = cache_root() / "firmware" / key
    binary = firmware_binary(final / "build", board)
    if binary.is_file():
        return binary
    tmp = final.with_name(f"{key}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        gen = tmp / "gen"
        gen.mkdir(parents=True)
        codegen.generate(list(layers), gen, cpu=cpu, registry=True, **codegen_options)
        make(board, cpu, gen, tmp / "build", opt=opt)
    except BaseException:  # a failed codegen or build leaves nothing in the cache
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    try:
        tmp.rename(final)
    except OSError:  # another process finished the same build first
        shutil.rmtree(tmp, ignore_errors=True)
    return binary


def build_prebuilt(gen_dir: Path, board: Board, cpu: str, *, opt: str = DEFAULT_OPT) -> Path:
    """Builds the firmware around already generated C in ``gen_dir`` (make decides what
    to rebuild); objects go to the cache, not into ``gen_dir``."""
    gen = gen_dir.resolve()
    if not (gen / "edgeconv_registry.c").is_file():
        raise ValueError(f"gen_dir={str(gen_dir)!r} holds no edgeconv_registry.c")
    tag = hashlib.sha256(str(gen).encode()).hexdigest()[:12]
    return make(board, cpu, gen,
                cache_root() / "firmware" / f"prebuilt-{tag}-{board.name}-{cpu}-{opt}",
                opt=opt)
