"""Layer names that clash with C library, POSIX or firmware symbols are refused (issue 11,
item 2): the C library and POSIX names are derived here from the host's libc headers, the
firmware's from its built images (nm), independently of the list in codegen/names.py."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import FIXTURE_DIR

from edgeconv import codegen
from edgeconv.codegen.names import check_layer_names
from edgeconv.targets import build
from edgeconv.targets.boards import BOARDS

# Headers of C11 (7.1.2) and of POSIX.1-2008 (XBD 13); absent ones are left out.
C_HEADERS = """assert complex ctype errno fenv float inttypes iso646 limits locale math setjmp
    signal stdalign stdarg stdatomic stdbool stddef stdint stdio stdlib stdnoreturn string
    tgmath threads time uchar wchar wctype""".split()
POSIX_HEADERS = """aio arpa/inet cpio dirent dlfcn fcntl fmtmsg fnmatch ftw glob grp iconv
    langinfo libgen monetary mqueue ndbm net/if netdb netinet/in netinet/tcp nl_types poll
    pthread pwd regex sched search semaphore spawn strings stropts sys/ipc sys/mman sys/msg
    sys/resource sys/select sys/sem sys/shm sys/socket sys/stat sys/statvfs sys/time
    sys/times sys/types sys/uio sys/un sys/utsname sys/wait syslog tar termios trace ulimit
    unistd utime utmpx wordexp""".split()
ISSUE_NAMES = ("printf", "abs", "exit", "malloc", "sqrt", "round", "write", "read",
               "clock_gettime", "board_init", "ec_crc32", "board_write")


def _refusal(name: str) -> str | None:
    """The ValueError message for layer ``name``, None if the name is accepted."""
    try:
        check_layer_names([name], "edgeconv", codegen.SYMBOL_SUFFIXES)
    except ValueError as exc:
        return str(exc)
    return None


def _accepted(names) -> list[str]:
    return sorted(name for name in set(names) if _refusal(name) is None)


def host_library_names(tmp_path: Path) -> set[str]:
    """Functions (gcc -aux-info) and extern objects (the preprocessed headers) declared by
    the host's C11 and POSIX headers under -std=c11 -D_XOPEN_SOURCE=700."""
    if not shutil.which("gcc"):
        pytest.skip("gcc not installed")
    src = tmp_path / "all.c"
    src.write_text("".join(f"#if __has_include(<{h}.h>)\n#include <{h}.h>\n#endif\n"
                           for h in C_HEADERS + POSIX_HEADERS))
    flags = ["-std=c11", "-D_XOPEN_SOURCE=700"]
    aux = tmp_path / "aux.txt"
    subprocess.run(["gcc", *flags, "-fsyntax-only", "-aux-info", str(aux), str(src)],
                   check=True)
    names = set()
    for line in aux.read_text().splitlines():
        decl = re.sub(r"^/\*.*?\*/\s*", "", line)  # the /* file:line */ tag
        # The declared function: the first identifier followed by '(' that does not open
        # a declarator such as "void (*signal (int, ...))(int)".
        match = re.search(r"([A-Za-z_]\w*)\s*\((?!\s*\*)", decl)
        if match:
            names.add(match.group(1))
    text = subprocess.run(["gcc", *flags, "-E", "-P", str(src)], check=True,
                          capture_output=True, text=True).stdout
    text = re.sub(r"__attribute__\s*\(\((?:[^()]|\([^()]*\))*\)\)", "", text)
    names |= {m.group(1) for m in re.finditer(
        r"\bextern\s+[^;{}()]*?\b([A-Za-z_]\w*)\s*(?:\[[^\]]*\]\s*)*;", text)}
    return names


def firmware_symbols(board_name: str, cpu: str) -> set[str]:
    """Global symbols the firmware image for ``board_name`` defines, and (native) the
    library symbols it uses, without the generated registry's own objects' symbols."""
    board = BOARDS[board_name]
    nm = "nm" if board_name == "native" else "arm-none-eabi-nm"
    if not shutil.which(nm) or (board_name != "native" and not shutil.which(
            "arm-none-eabi-gcc")):
        pytest.skip(f"{nm} / arm-none-eabi-gcc not installed")
    image = build.build_prebuilt(FIXTURE_DIR, board, cpu)

    def symbols(path: Path, *options: str) -> set[str]:
        out = subprocess.run([nm, *options, str(path)], check=True, capture_output=True,
                             text=True).stdout
        return {line.split()[-1].split("@")[0] for line in out.splitlines() if line.strip()}

    found = symbols(image, "--defined-only", "-g")
    if board_name == "native":
        found |= symbols(image, "-u")  # write, read, clock_gettime... from the C library
    generated = {f.stem for f in FIXTURE_DIR.glob("*.c")}
    for obj in (image.parent / "obj").glob("*.o"):
        if obj.stem in generated:
            found -= symbols(obj, "--defined-only", "-g")
    return found


def test_names_of_the_issue_are_refused():
    accepted = [name for name in ISSUE_NAMES if _refusal(name) is None]
    assert accepted == []
    assert "C library or POSIX" in _refusal("printf")
    assert _refusal("board_init") == ("layer name='board_init': starts with ec_ or board_, "
                                      "reserved for the firmware")


def test_every_host_library_function_and_object_is_refused(tmp_path):
    names = host_library_names(tmp_path)
    assert {"printf", "malloc", "write", "clock_gettime", "optarg", "stdout"} <= names
    assert len(names) > 1000, len(names)
    assert _accepted(names) == []


@pytest.mark.parametrize("board_name,cpu", [(name, board.cpu) for name, board in BOARDS.items()])
def test_every_firmware_symbol_is_refused(board_name, cpu):
    symbols = firmware_symbols(board_name, cpu)
    assert {"board_init", "board_write", "ec_crc32", "main"} <= symbols, symbols
    assert _accepted(symbols) == []
    # A layer whose <name>_<suffix> symbol is a firmware symbol is refused too.
    stems = {s[: -len(suffix) - 1] for s in symbols for suffix in codegen.SYMBOL_SUFFIXES
             if s.endswith("_" + suffix) and len(s) > len(suffix) + 1}
    assert _accepted(stems) == []


def test_ordinary_names_are_still_accepted():
    for name in ("conv1", "dw_3x3", "L7", "layer0", "pool", "Conv2D_a", "x"):
        assert _refusal(name) is None, _refusal(name)


@pytest.mark.parametrize("suffix", ["params", "pixels", "fill", "pad"])
def test_helium_symbols_of_one_layer_cannot_be_another_layers_name(suffix):
    with pytest.raises(ValueError, match=f"'a_{suffix}' collides with layer 'a'"):
        check_layer_names(["a", f"a_{suffix}"], "edgeconv", codegen.SYMBOL_SUFFIXES)
