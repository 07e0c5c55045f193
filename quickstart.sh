#!/usr/bin/env bash
# tinydeploy quick start on a Debian machine.
#   ./quickstart.sh demo   set up, then compile the bundled digits CNN and run its
#                          held-out split through the generated C (float and int8)
#   ./quickstart.sh test   set up, then run the whole test suite
# Set-up installs only what is missing: Debian packages (when run as root),
# a virtualenv in .venv, and tinydeploy itself (editable) with its test tools.
set -euo pipefail
cd "$(dirname "$0")"
what="${1:-demo}"

APT_PACKAGES=(gcc make python3-venv python3-pip
  gcc-arm-none-eabi libnewlib-arm-none-eabi gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf
  qemu-system-arm qemu-system-misc clang cppcheck cmake chromium)

missing_packages() {
  local p
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || echo "$p"
  done
}

install_system() {
  command -v dpkg-query >/dev/null || { echo "not a Debian system: install the packages listed in README.md by hand"; return; }
  local missing
  missing=$(missing_packages | tr '\n' ' ')
  [ -z "${missing// }" ] && return
  if [ "$(id -u)" = 0 ]; then
    echo "installing Debian packages: $missing"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
  else
    echo "missing Debian packages: $missing"
    echo "run as root, or: sudo apt-get install $missing"
    exit 1
  fi
}

install_python() {
  if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
  fi
  local stamp=.venv/.tinydeploy-installed
  if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e ".[test]"
    touch "$stamp"
  fi
}

install_system
install_python
export PATH="$PWD/.venv/bin:$PATH"

case "$what" in
  demo)
    ex=examples/digits
    echo "== float32 on the emulated Cortex-M7 (stm32f746)"
    tinydeploy run $ex/digits_cnn.onnx -t stm32f746 --quantize float32 --inputs $ex/test.npz -o out/digits_float.npz
    echo "== int8, calibrated on the training split, on the emulated Cortex-M7 (stm32f746)"
    tinydeploy run $ex/digits_cnn.onnx -t stm32f746 --calib $ex/calib.npz --inputs $ex/test.npz -o out/digits_int8.npz
    ;;
  test)
    python -m pytest -q -n auto tests "${@:2}"
    ;;
  *)
    echo "usage: $0 demo|test [pytest args]"; exit 2 ;;
esac
