#!/usr/bin/env bash
# Install the system packages edgeconv needs (Debian/Ubuntu). As root, missing
# packages are installed with apt-get; otherwise the exact command is printed.
# Under CI=true a missing tool is an error, never a silent skip.
set -euo pipefail
need=()
command -v cc >/dev/null 2>&1 || need+=(gcc)
command -v clang >/dev/null 2>&1 || need+=(clang)
# clang's sanitizer runtime (the golden suite also runs a clang ASan/UBSan build)
sanitized_clang_links() {
    command -v clang >/dev/null 2>&1 && printf 'int main(void){return 0;}\n' |
        clang -x c -fsanitize=address,undefined - -o /dev/null >/dev/null 2>&1
}
sanitized_clang_links || need+=(libclang-rt-dev)
command -v arm-none-eabi-gcc >/dev/null 2>&1 || need+=(gcc-arm-none-eabi)
[ -f /usr/lib/arm-none-eabi/newlib/libc.a ] || need+=(libnewlib-arm-none-eabi)
command -v qemu-system-arm >/dev/null 2>&1 || need+=(qemu-system-arm)
# headless Chromium renders edgeconv report's HTML page in the tests
command -v chromium >/dev/null 2>&1 || need+=(chromium)
[ ${#need[@]} -eq 0 ] && exit 0
cmd="apt-get update && apt-get install -y --no-install-recommends ${need[*]}"
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing system packages: ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
else
    echo "edgeconv needs system packages: ${need[*]}" >&2
    echo "install them with:  sudo sh -c '$cmd'" >&2
    if [ "${CI:-}" = true ]; then exit 1; fi
fi
