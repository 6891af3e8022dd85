# shellcheck shell=bash
# Sourced by ci/setup scripts that fetch Debian packages or sources without touching the
# system's apt configuration: an apt with its own list, lists and cache under a directory.
#   private_apt DIR SUITE TYPES    e.g. private_apt "$W/apt" bookworm "deb deb-src"
# makes DIR's sources (Debian SUITE, main, amd64 and arm64), fills the array `apt_private`
# with the options that select them (`apt-get "${apt_private[@]}" download musl:arm64`),
# and updates the lists.
private_apt() {
  local dir="$1" suite="$2" types="$3"
  mkdir -p "$dir/parts" "$dir/lists/partial" "$dir/cache"
  printf 'Types: %s\nURIs: http://deb.debian.org/debian\nSuites: %s\nComponents: main\nArchitectures: amd64 arm64\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
    "$types" "$suite" > "$dir/parts/debian.sources"
  apt_private=(-o Dir::Etc::SourceList=/dev/null -o "Dir::Etc::SourceParts=$dir/parts"
    -o "Dir::State::Lists=$dir/lists" -o "Dir::Cache=$dir/cache" -o Dir::State::status=/dev/null
    -o APT::Architectures::=amd64 -o APT::Architectures::=arm64)
  apt-get "${apt_private[@]}" update -qq 2>&1 | grep -v 'unsandboxed' || true
}
