/* The harness as a host process: it serves the protocol on a pseudo-terminal and
 * announces the slave path on stderr exactly like QEMU's "-serial pty".
 * SIGUSR1 re-executes the program on the same pseudo-terminal: a device reset. */
#define _DEFAULT_SOURCE
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "ec_board.h"
#include "ec_protocol.h"

#define FD_ENV "EDGECONV_NATIVE_PTY_FD"

static int master_fd = -1;
static int slave_fd = -1; /* kept open: reads then never fail when the host disconnects */
static struct timespec t0;

static void die(const char *what)
{
    fprintf(stderr, "edgeconv native: %s: %s\n", what, strerror(errno));
    exit(2);
}

static void on_reset(int sig)
{
    (void)sig;
    char fd[32];
    snprintf(fd, sizeof fd, "%d,%d", master_fd, slave_fd);
    setenv(FD_ENV, fd, 1);
    execl("/proc/self/exe", "edgeconv-native", (char *)NULL);
    _exit(3);
}

static void open_pty(void)
{
    master_fd = posix_openpt(O_RDWR | O_NOCTTY);
    if (master_fd < 0 || grantpt(master_fd) != 0 || unlockpt(master_fd) != 0)
        die("posix_openpt");
    const char *path = ptsname(master_fd);
    if (!path)
        die("ptsname");
    slave_fd = open(path, O_RDWR | O_NOCTTY);
    if (slave_fd < 0)
        die("open slave");
    struct termios tio;
    if (tcgetattr(slave_fd, &tio) != 0)
        die("tcgetattr");
    cfmakeraw(&tio);
    if (tcsetattr(slave_fd, TCSANOW, &tio) != 0)
        die("tcsetattr");
    fprintf(stderr, "char device redirected to %s (label serial0)\n", path);
    fflush(stderr);
}

void board_init(void)
{
    const char *fds = getenv(FD_ENV);
    if (fds && sscanf(fds, "%d,%d", &master_fd, &slave_fd) == 2)
        unsetenv(FD_ENV);
    else
        open_pty();
    /* SIGUSR1 stays blocked from the handler through exec until the handler is back,
     * so a reset arriving while the program restarts is deferred, not fatal. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_reset;
    sigaction(SIGUSR1, &sa, NULL);
    sigset_t usr1;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    sigprocmask(SIG_UNBLOCK, &usr1, NULL);
}

void board_write(const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(master_fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            die("write");
        }
        p += w;
        n -= (size_t)w;
    }
}

uint8_t board_getc(void)
{
    static uint8_t buf[4096];
    static size_t head, fill;
    while (head == fill) {
        ssize_t r = read(master_fd, buf, sizeof buf);
        if (r > 0) {
            head = 0;
            fill = (size_t)r;
        } else if (r < 0 && errno != EINTR && errno != EAGAIN) {
            die("read");
        }
    }
    return buf[head++];
}

uint8_t board_counter_kind(void) { return EC_COUNTER_NS; }

uint32_t board_counter_hz(void) { return 1000000000u; }

void board_counter_start(void) { clock_gettime(CLOCK_MONOTONIC, &t0); }

uint64_t board_counter_stop(void)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (uint64_t)(t1.tv_sec - t0.tv_sec) * 1000000000u + (uint64_t)t1.tv_nsec -
           (uint64_t)t0.tv_nsec;
}

void board_exit(int code) { exit(code); }
