"""Safe C identifiers, C literals and C comments for generated code."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

MAX_NAME_LENGTH = 31  # C99 5.2.4.1: significant initial characters of an external identifier

# Macro suffixes codegen writes per layer into the header. The static symbols a layer's
# kernel may emit are declared by the kernel modules (edgeconv.codegen.kernels).
MACRO_SUFFIXES = ("INPUT_COUNT", "OUTPUT_COUNT", "SCRATCH_BYTES", "STRATEGY")

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_C_KEYWORDS = frozenset("""
    auto break case char const continue default do double else enum extern float for goto
    if inline int long register restrict return short signed sizeof static struct switch
    typedef union unsigned void volatile while _Bool _Complex _Imaginary
    _Alignas _Alignof _Atomic _Generic _Noreturn _Static_assert _Thread_local
""".split())
# Names the included standard headers define or reserve (C99 7.18, 7.17, 7.21, 7.26).
_LIBRARY = re.compile(
    r"(main|NULL|offsetof|bool|true|false|asm"
    r"|U?INT(_LEAST|_FAST)?[0-9]*_(MAX|MIN|C)|U?INT(MAX|PTR)_(MAX|MIN|C)"
    r"|(SIZE|PTRDIFF|SIG_ATOMIC|WCHAR|WINT)_(MAX|MIN)"
    r"|.*_t|(str|mem|wcs)[a-z].*)\Z")


def _reserved_reason(ident: str, generated_ok: bool) -> str | None:
    if ident in _C_KEYWORDS:
        return "is a C keyword"
    if ident.startswith("__") or re.match(r"_[A-Z]", ident):
        return "is reserved (starts with __ or _ and an uppercase letter)"
    if _LIBRARY.match(ident):
        return "is defined or reserved by the C standard library headers"
    if ident.lower().startswith("edgeconv_registry" if generated_ok else "edgeconv"):
        return "starts with 'edgeconv', reserved for generated symbols and files"
    return None


def check_identifier(value: object, what: str, *, generated_ok: bool = False) -> str:
    """Return ``value`` if it is a safe C identifier, else raise ValueError naming ``what``.

    Names starting with ``edgeconv`` are reserved for generated symbols; with
    ``generated_ok`` (the file prefix) only ``edgeconv_registry*`` is.
    """
    if not isinstance(value, str):
        raise ValueError(f"{what}={value!r}: must be a string matching [A-Za-z_][A-Za-z0-9_]*")
    if not _IDENT.match(value):
        raise ValueError(f"{what}={value!r}: must match [A-Za-z_][A-Za-z0-9_]*")
    if len(value) > MAX_NAME_LENGTH:
        raise ValueError(
            f"{what}={value!r}: length {len(value)}, allowed range is [1, {MAX_NAME_LENGTH}]")
    reason = _reserved_reason(value, generated_ok)
    if reason:
        raise ValueError(f"{what}={value!r}: {reason}")
    return value


def layer_symbols(name: str, suffixes: Iterable[str]) -> set[str]:
    """Every identifier codegen or a kernel emitting symbols ``<name>_<suffix>`` may define
    for layer ``name``."""
    upper = name.upper()
    return ({name} | {f"{upper}_{s}" for s in MACRO_SUFFIXES}
            | {f"{name}_{s}" for s in suffixes})


def check_layer_names(names: Sequence[object], prefix: object,
                      suffixes: Iterable[str]) -> list[str]:
    """Validate the layer names and the prefix; raise ValueError on any clash between the
    symbols of two layers, each reserving ``<name>_<suffix>`` for every suffix."""
    suffixes = tuple(suffixes)
    check_identifier(prefix, "prefix", generated_ok=True)
    owner: dict[str, str] = {}
    checked = []
    for name in names:
        ident = check_identifier(name, "layer name")
        if ident in checked:
            raise ValueError(f"layer name={ident!r}: duplicate, collides with another layer "
                             f"of that name (names must be unique)")
        for symbol in sorted(layer_symbols(ident, suffixes)):
            other = owner.get(symbol)
            if other is not None:
                raise ValueError(
                    f"layer name={ident!r}: its symbol {symbol!r} collides with layer {other!r}")
            owner[symbol] = ident
        checked.append(ident)
    return checked


# ------------------------------------------------------------------------------ literals

_BITS = {"int8_t": 8, "int16_t": 16, "int32_t": 32, "int64_t": 64,
         "uint8_t": 8, "uint16_t": 16, "uint32_t": 32}


def c_int(value: int, ctype: str = "int32_t") -> str:
    """A C literal for ``value`` of type ``ctype`` (range-checked; the minimum is spelled
    ``(-MAX - 1)`` since ``-2147483648`` is not an int literal)."""
    v = int(value)
    bits = _BITS[ctype]
    signed = not ctype.startswith("u")
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    if not lo <= v <= hi:
        raise ValueError(f"value={v}: allowed range for {ctype} is [{lo}, {hi}]")
    if bits == 64:
        return f"(-INT64_C({hi}) - 1)" if v == lo else f"INT64_C({v})"
    if signed and bits == 32 and v == lo:
        return f"(-{hi} - 1)"
    if not signed:
        return f"{v}u"
    return str(v)


def c_plus(value: int) -> str:
    """`` + v`` / `` - |v|`` to append to a C expression; empty for 0."""
    v = int(value)
    return "" if v == 0 else (f" + {v}" if v > 0 else f" - {-v}")


def c_initializer(values: Iterable[int], ctype: str, per_line: int = 12) -> str:
    """Comma-separated literals, ``per_line`` a line, indented; a lone 0 when empty."""
    items = [c_int(v, ctype) for v in values] or ["0"]
    lines = [", ".join(items[i:i + per_line]) for i in range(0, len(items), per_line)]
    return ",\n".join("    " + line for line in lines)


def c_comment(text: object) -> str:
    """Text safe inside a ``/* */`` comment on one line: no ``*/``, ``/*``, newlines,
    trigraphs or line splices, printable ASCII only."""
    s = "".join(ch if " " <= ch <= "~" else "?" for ch in str(text))
    s = s.replace("\\", "/")
    while "*/" in s or "/*" in s or "??" in s:
        s = s.replace("*/", "* /").replace("/*", "/ *").replace("??", "? ?")
    return s


def c_string(text: str) -> str:
    """A C string literal for an identifier-like ``text`` (validated: [A-Za-z0-9_])."""
    if not re.fullmatch(r"[A-Za-z0-9_]*", text):
        raise ValueError(f"text={text!r}: only [A-Za-z0-9_] may be placed in a C string")
    return f'"{text}"'
