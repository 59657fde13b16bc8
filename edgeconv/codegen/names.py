"""Safe C identifiers, C literals and C comments for generated code."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import numpy as np

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


# Functions and objects of the C library (C99/C11) and POSIX.1-2008 with XSI: a layer
# function of such a name conflicts with a compiler built-in ("conflicting types for
# built-in function"), fails to link, or silently replaces the library function in the
# native firmware (write, read, clock_gettime). Written from the declarations the host's
# glibc headers make for -std=c11 -D_XOPEN_SOURCE=700, plus the names the standards allow
# to be macros (assert, errno, isnan...); tests/test_reserved_names.py derives the list
# again from the host headers and checks that every name on it is refused.
C_POSIX_NAMES = frozenset("""
    a64l abort abs accept access acos acosf acosh acoshf acoshl acosl aio_cancel aio_error
    aio_fsync aio_read aio_return aio_suspend aio_write alarm alignas aligned_alloc alignof
    alphasort asctime asctime_r asin asinf asinh asinhf asinhl asinl assert at_quick_exit atan
    atan2 atan2f atan2l atanf atanh atanhf atanhl atanl atexit atof atoi atol atoll
    atomic_flag_clear atomic_flag_clear_explicit atomic_flag_test_and_set
    atomic_flag_test_and_set_explicit atomic_signal_fence atomic_thread_fence bind bsearch btowc
    c16rtomb c32rtomb cabs cabsf cabsl cacos cacosf cacosh cacoshf cacoshl cacosl call_once
    calloc carg cargf cargl casin casinf casinh casinhf casinhl casinl catan catanf catanh
    catanhf catanhl catanl catclose catgets catopen cbrt cbrtf cbrtl ccos ccosf ccosh ccoshf
    ccoshl ccosl ceil ceilf ceill cexp cexpf cexpl cfgetispeed cfgetospeed cfsetispeed
    cfsetospeed chdir chmod chown cimag cimagf cimagl clearerr clock clock_getcpuclockid
    clock_getres clock_gettime clock_nanosleep clock_settime clog clogf clogl close closedir
    closelog cnd_broadcast cnd_destroy cnd_init cnd_signal cnd_timedwait cnd_wait confstr conj
    conjf conjl connect copysign copysignf copysignl cos cosf cosh coshf coshl cosl cpow cpowf
    cpowl cproj cprojf cprojl creal crealf creall creat csin csinf csinh csinhf csinhl csinl
    csqrt csqrtf csqrtl ctan ctanf ctanh ctanhf ctanhl ctanl ctermid ctime ctime_r daylight
    difftime dirfd dirname div dlclose dlerror dlopen dlsym dprintf drand48 dup dup2 duplocale
    endgrent endhostent endnetent endprotoent endpwent endservent endutxent environ erand48 erf
    erfc erfcf erfcl erff erfl errno execl execle execlp execv execve execvp exit exp exp2 exp2f
    exp2l expf expl expm1 expm1f expm1l fabs fabsf fabsl faccessat fchdir fchmod fchmodat fchown
    fchownat fclose fcntl fdatasync fdim fdimf fdiml fdopen fdopendir feclearexcept fegetenv
    fegetexceptflag fegetround feholdexcept feof feraiseexcept ferror fesetenv fesetexceptflag
    fesetround fetestexcept feupdateenv fexecve fflush ffs fgetc fgetpos fgets fgetwc fgetws
    fileno flockfile floor floorf floorl fma fmaf fmal fmax fmaxf fmaxl fmemopen fmin fminf
    fminl fmod fmodf fmodl fmtmsg fnmatch fopen fork fpathconf fpclassify fprintf fputc fputs
    fputwc fputws fread free freeaddrinfo freelocale freopen frexp frexpf frexpl fscanf fseek
    fseeko fsetpos fstat fstatat fstatvfs fsync ftell ftello ftok ftruncate ftrylockfile ftw
    funlockfile futimens fwide fwprintf fwrite fwscanf gai_strerror getaddrinfo getc
    getc_unlocked getchar getchar_unlocked getcwd getdate getdate_err getdelim getegid getenv
    geteuid getgid getgrent getgrgid getgrgid_r getgrnam getgrnam_r getgroups gethostbyaddr
    gethostbyname gethostent gethostid gethostname getitimer getline getlogin getlogin_r
    getnameinfo getnetbyaddr getnetbyname getnetent getopt getpeername getpgid getpgrp getpid
    getppid getpriority getprotobyname getprotobynumber getprotoent getpwent getpwnam getpwnam_r
    getpwuid getpwuid_r getrlimit getrusage getservbyname getservbyport getservent getsid
    getsockname getsockopt getsubopt gettimeofday getuid getutxent getutxid getutxline getwc
    getwchar glob globfree gmtime gmtime_r grantpt hcreate hdestroy hsearch htonl htons hypot
    hypotf hypotl iconv iconv_close iconv_open if_freenameindex if_indextoname if_nameindex
    if_nametoindex ilogb ilogbf ilogbl imaxabs imaxdiv in6addr_any in6addr_loopback inet_addr
    inet_lnaof inet_makeaddr inet_netof inet_network inet_ntoa inet_ntop inet_pton initstate
    insque isalnum isalnum_l isalpha isalpha_l isascii isatty isblank isblank_l iscntrl
    iscntrl_l isdigit isdigit_l isfinite isgraph isgraph_l isgreater isgreaterequal isinf isless
    islessequal islessgreater islower islower_l isnan isnormal isprint isprint_l ispunct
    ispunct_l isspace isspace_l isunordered isupper isupper_l iswalnum iswalnum_l iswalpha
    iswalpha_l iswblank iswblank_l iswcntrl iswcntrl_l iswctype iswctype_l iswdigit iswdigit_l
    iswgraph iswgraph_l iswlower iswlower_l iswprint iswprint_l iswpunct iswpunct_l iswspace
    iswspace_l iswupper iswupper_l iswxdigit iswxdigit_l isxdigit isxdigit_l j0 j1 jn jrand48
    kill killpg l64a labs lchown lcong48 ldexp ldexpf ldexpl ldiv lfind lgamma lgammaf lgammal
    link linkat lio_listio listen llabs lldiv llrint llrintf llrintl llround llroundf llroundl
    localeconv localtime localtime_r lockf log log10 log10f log10l log1p log1pf log1pl log2
    log2f log2l logb logbf logbl logf logl longjmp lrand48 lrint lrintf lrintl lround lroundf
    lroundl lsearch lseek lstat malloc mblen mbrlen mbrtoc16 mbrtoc32 mbrtowc mbsinit mbsnrtowcs
    mbsrtowcs mbstowcs mbtowc memccpy memchr memcmp memcpy memmove memset mkdir mkdirat mkdtemp
    mkfifo mkfifoat mknod mknodat mkstemp mktime mlock mlockall mmap modf modff modfl mprotect
    mq_close mq_getattr mq_notify mq_open mq_receive mq_send mq_setattr mq_timedreceive
    mq_timedsend mq_unlink mrand48 msgctl msgget msgrcv msgsnd msync mtx_destroy mtx_init
    mtx_lock mtx_timedlock mtx_trylock mtx_unlock munlock munlockall munmap nan nanf nanl
    nanosleep nearbyint nearbyintf nearbyintl newlocale nextafter nextafterf nextafterl
    nexttoward nexttowardf nexttowardl nftw nice nl_langinfo nl_langinfo_l noreturn nrand48
    ntohl ntohs offsetof open open_memstream open_wmemstream openat opendir openlog optarg
    opterr optind optopt pathconf pause pclose perror pipe poll popen posix_fadvise
    posix_fallocate posix_madvise posix_memalign posix_openpt posix_spawn
    posix_spawn_file_actions_addclose posix_spawn_file_actions_adddup2
    posix_spawn_file_actions_addopen posix_spawn_file_actions_destroy
    posix_spawn_file_actions_init posix_spawnattr_destroy posix_spawnattr_getflags
    posix_spawnattr_getpgroup posix_spawnattr_getschedparam posix_spawnattr_getschedpolicy
    posix_spawnattr_getsigdefault posix_spawnattr_getsigmask posix_spawnattr_init
    posix_spawnattr_setflags posix_spawnattr_setpgroup posix_spawnattr_setschedparam
    posix_spawnattr_setschedpolicy posix_spawnattr_setsigdefault posix_spawnattr_setsigmask
    posix_spawnp pow powf powl pread printf pselect psiginfo psignal pthread_atfork
    pthread_attr_destroy pthread_attr_getdetachstate pthread_attr_getguardsize
    pthread_attr_getinheritsched pthread_attr_getschedparam pthread_attr_getschedpolicy
    pthread_attr_getscope pthread_attr_getstack pthread_attr_getstackaddr
    pthread_attr_getstacksize pthread_attr_init pthread_attr_setdetachstate
    pthread_attr_setguardsize pthread_attr_setinheritsched pthread_attr_setschedparam
    pthread_attr_setschedpolicy pthread_attr_setscope pthread_attr_setstack
    pthread_attr_setstackaddr pthread_attr_setstacksize pthread_barrier_destroy
    pthread_barrier_init pthread_barrier_wait pthread_barrierattr_destroy
    pthread_barrierattr_getpshared pthread_barrierattr_init pthread_barrierattr_setpshared
    pthread_cancel pthread_cond_broadcast pthread_cond_destroy pthread_cond_init
    pthread_cond_signal pthread_cond_timedwait pthread_cond_wait pthread_condattr_destroy
    pthread_condattr_getclock pthread_condattr_getpshared pthread_condattr_init
    pthread_condattr_setclock pthread_condattr_setpshared pthread_create pthread_detach
    pthread_equal pthread_exit pthread_getconcurrency pthread_getcpuclockid
    pthread_getschedparam pthread_getspecific pthread_join pthread_key_create pthread_key_delete
    pthread_kill pthread_mutex_consistent pthread_mutex_destroy pthread_mutex_getprioceiling
    pthread_mutex_init pthread_mutex_lock pthread_mutex_setprioceiling pthread_mutex_timedlock
    pthread_mutex_trylock pthread_mutex_unlock pthread_mutexattr_destroy
    pthread_mutexattr_getprioceiling pthread_mutexattr_getprotocol pthread_mutexattr_getpshared
    pthread_mutexattr_getrobust pthread_mutexattr_gettype pthread_mutexattr_init
    pthread_mutexattr_setprioceiling pthread_mutexattr_setprotocol pthread_mutexattr_setpshared
    pthread_mutexattr_setrobust pthread_mutexattr_settype pthread_once pthread_rwlock_destroy
    pthread_rwlock_init pthread_rwlock_rdlock pthread_rwlock_timedrdlock
    pthread_rwlock_timedwrlock pthread_rwlock_tryrdlock pthread_rwlock_trywrlock
    pthread_rwlock_unlock pthread_rwlock_wrlock pthread_rwlockattr_destroy
    pthread_rwlockattr_getkind_np pthread_rwlockattr_getpshared pthread_rwlockattr_init
    pthread_rwlockattr_setkind_np pthread_rwlockattr_setpshared pthread_self
    pthread_setcancelstate pthread_setcanceltype pthread_setconcurrency pthread_setschedparam
    pthread_setschedprio pthread_setspecific pthread_sigmask pthread_spin_destroy
    pthread_spin_init pthread_spin_lock pthread_spin_trylock pthread_spin_unlock
    pthread_testcancel ptsname putc putc_unlocked putchar putchar_unlocked putenv puts
    pututxline putwc putwchar pwrite qsort quick_exit raise rand rand_r random re_syntax_options
    read readdir readdir_r readlink readlinkat readv realloc realpath recv recvfrom recvmsg
    regcomp regerror regexec regfree remainder remainderf remainderl remove remque remquo
    remquof remquol rename renameat rewind rewinddir rint rintf rintl rmdir round roundf roundl
    scalbln scalblnf scalblnl scalbn scalbnf scalbnl scandir scanf sched_get_priority_max
    sched_get_priority_min sched_getparam sched_getscheduler sched_rr_get_interval
    sched_setparam sched_setscheduler sched_yield seed48 seekdir select sem_close sem_destroy
    sem_getvalue sem_init sem_open sem_post sem_timedwait sem_trywait sem_unlink sem_wait semctl
    semget semop send sendmsg sendto setbuf setegid setenv seteuid setgid setgrent sethostent
    setitimer setjmp setlocale setlogmask setnetent setpgid setpgrp setpriority setprotoent
    setpwent setregid setreuid setrlimit setservent setsid setsockopt setstate setuid setutxent
    setvbuf shm_open shm_unlink shmat shmctl shmdt shmget shutdown sigaction sigaddset
    sigaltstack sigdelset sigemptyset sigfillset sighold sigignore siginterrupt sigismember
    siglongjmp signal signbit signgam sigpause sigpending sigprocmask sigqueue sigrelse sigset
    sigsuspend sigtimedwait sigwait sigwaitinfo sin sinf sinh sinhf sinhl sinl sleep snprintf
    sockatmark socket socketpair sprintf sqrt sqrtf sqrtl srand srand48 srandom sscanf stat
    static_assert statvfs stderr stdin stdout stpcpy stpncpy strcasecmp strcasecmp_l strcat
    strchr strcmp strcoll strcoll_l strcpy strcspn strdup strerror strerror_l strerror_r strfmon
    strfmon_l strftime strftime_l strlen strncasecmp strncasecmp_l strncat strncmp strncpy
    strndup strnlen strpbrk strptime strrchr strsignal strspn strstr strtod strtof strtoimax
    strtok strtok_r strtol strtold strtoll strtoul strtoull strtoumax strxfrm strxfrm_l swab
    swprintf swscanf symlink symlinkat sync sysconf syslog system tan tanf tanh tanhf tanhl tanl
    tcdrain tcflow tcflush tcgetattr tcgetpgrp tcgetsid tcsendbreak tcsetattr tcsetpgrp tdelete
    telldir tempnam tfind tgamma tgammaf tgammal thrd_create thrd_current thrd_detach thrd_equal
    thrd_exit thrd_join thrd_sleep thrd_yield time timer_create timer_delete timer_getoverrun
    timer_gettime timer_settime times timespec_get timezone tmpfile tmpnam toascii tolower
    tolower_l toupper toupper_l towctrans towctrans_l towlower towlower_l towupper towupper_l
    trunc truncate truncf truncl tsearch tss_create tss_delete tss_get tss_set ttyname ttyname_r
    twalk tzname tzset ulimit umask uname ungetc ungetwc unlink unlinkat unlockpt unsetenv
    uselocale utime utimensat utimes va_arg va_copy va_end va_start vdprintf vfprintf vfscanf
    vfwprintf vfwscanf vprintf vscanf vsnprintf vsprintf vsscanf vswprintf vswscanf vwprintf
    vwscanf wait waitid waitpid wcpcpy wcpncpy wcrtomb wcscasecmp wcscasecmp_l wcscat wcschr
    wcscmp wcscoll wcscoll_l wcscpy wcscspn wcsdup wcsftime wcslen wcsncasecmp wcsncasecmp_l
    wcsncat wcsncmp wcsncpy wcsnlen wcsnrtombs wcspbrk wcsrchr wcsrtombs wcsspn wcsstr wcstod
    wcstof wcstoimax wcstok wcstol wcstold wcstoll wcstombs wcstoul wcstoull wcstoumax wcswcs
    wcswidth wcsxfrm wcsxfrm_l wctob wctomb wctrans wctrans_l wctype wctype_l wcwidth wmemchr
    wmemcmp wmemcpy wmemmove wmemset wordexp wordfree wprintf write writev wscanf y0 y1 yn
""".split())

# The firmware's own global symbols (firmware/common, arch, boards, drivers and the C
# runtime they link with): the prefixes ec_ and board_ (any case) and these names, with
# the library functions the native firmware calls beyond POSIX (cfmakeraw).
# tests/test_reserved_names.py builds the firmware, reads its symbols with nm and checks
# that every one is refused.
FIRMWARE_PREFIXES = ("ec_", "board_")
FIRMWARE_SYMBOLS = frozenset("""
    main data_start HardFault_Handler Reset_Handler SysTick_Handler
    cmsdk_uart_init cmsdk_uart_irq nrf51_uart_init nrf51_uart_irq
    stm32_usart_init stm32_usart_irq cfmakeraw
""".split())


def _reserved_reason(ident: str, generated_ok: bool) -> str | None:
    if ident in _C_KEYWORDS:
        return "is a C keyword"
    if ident.startswith("_"):
        return "is reserved (C99 7.1.3: identifiers starting with _ at file scope)"
    if ident in C_POSIX_NAMES:
        return ("is a C library or POSIX function or object: the generated symbol would "
                "clash with it")
    if _LIBRARY.match(ident):
        return "is defined or reserved by the C standard library headers"
    if ident.lower().startswith(FIRMWARE_PREFIXES):
        return f"starts with {' or '.join(FIRMWARE_PREFIXES)}, reserved for the firmware"
    if ident in FIRMWARE_SYMBOLS:
        return "is a symbol the firmware defines"
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
            reason = None if symbol == ident else _reserved_reason(symbol, False)
            if reason:
                raise ValueError(f"layer name={ident!r}: its symbol {symbol!r} {reason}")
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


def ints(values: object) -> list[int]:
    """Any array-like of integers as a flat list of Python ints (template data)."""
    return [int(v) for v in np.asarray(values).ravel()]


def c_int(value: int | CExpr, ctype: str = "int32_t") -> str:
    """A C literal for ``value`` of type ``ctype`` (range-checked; the minimum is spelled
    ``(-MAX - 1)`` since ``-2147483648`` is not an int literal); a run-time value's
    expression as it is."""
    if isinstance(value, CExpr):
        return str(value)
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


class CExpr:
    """A value a template reads that is known only at run time: a C expression such as
    ``p->out_h`` (the parameters of a kernel shared by several layers, specialize="size").
    It is truthy (a template's ``{% if pad %}`` keeps the general code), equal to no
    number, and combines with numbers into larger expressions (``k_h * k_w``, ``-pad``)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"CExpr({self.text!r})"

    def __neg__(self) -> CExpr:
        return CExpr(f"(-{self.text})")

    def __mul__(self, other: object) -> CExpr:
        return CExpr(f"({self.text} * {other})")

    def __rmul__(self, other: object) -> CExpr:
        return CExpr(f"({other} * {self.text})")

    def __add__(self, other: object) -> CExpr:
        return CExpr(f"({self.text} + {other})")

    def __radd__(self, other: object) -> CExpr:
        return CExpr(f"({other} + {self.text})")


def c_plus(value: int | CExpr) -> str:
    """`` + v`` / `` - |v|`` to append to a C expression; empty for 0; `` + (expr)`` for a
    run-time value."""
    if isinstance(value, CExpr):
        return f" + {value}"
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
