# Sourced by ci/setup scripts that need a Debian package whose service must not run
# (nginx, prometheus): the tests start the program themselves, with their own config in a
# temp dir. `debian_install PACKAGE` installs it with apt-get only when `find_bin` (defined
# by the caller) finds nothing; the package's postinst is kept from starting its service
# (policy-rc.d 101, removed afterwards unless it was there before). Prints the binary path.
debian_install() {
  local pkg=$1 bin
  bin=$(find_bin)
  if [ -z "$bin" ]; then
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
      echo "$pkg not found, and apt-get as root is not available to install it" >&2
      return 1
    fi
    local prc=/usr/sbin/policy-rc.d had_prc=0
    [ -e "$prc" ] && had_prc=1
    [ $had_prc = 1 ] || { printf '#!/bin/sh\nexit 101\n' > "$prc"; chmod +x "$prc"; }
    local ok=0
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$pkg" >/dev/null 2>&1 && ok=1
    if [ $ok = 0 ]; then
      apt-get update -q >/dev/null 2>&1 &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$pkg" >/dev/null 2>&1 && ok=1
    fi
    [ $had_prc = 1 ] || rm -f "$prc"
    [ $ok = 1 ] || { echo "apt-get could not install $pkg" >&2; return 1; }
    bin=$(find_bin)
  fi
  [ -n "$bin" ] || { echo "$pkg still not found after the install" >&2; return 1; }
  echo "$bin"
}
