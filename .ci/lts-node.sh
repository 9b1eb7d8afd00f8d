# Sourced by .ci/run. corral supports the Node.js LTS lines from 22.12 on (package.json
# "engines"); a machine whose own node is older (Debian's, or an end-of-life line) gets one
# from the npm registry: the node-linux-<arch> package carries the official binary and the
# headers that native modules (better-sqlite3) build against, so nothing else is downloaded.

# Prints the directory holding bin/node and include/node for Node.js major version $1,
# fetching it into a cache on first use.
lts_node_dir() {
  local major=$1 arch
  case "$(uname -m)" in
    x86_64) arch=x64 ;;
    aarch64) arch=arm64 ;;
    *) echo "no Node.js package for $(uname -m)" >&2; return 1 ;;
  esac
  # Under /usr (root, as CI is): the sandboxes bind /usr read-only, so tests that run
  # process.execPath inside an instance find it there. Elsewhere a per-user cache.
  local root="${XDG_CACHE_HOME:-$HOME/.cache}/corral-ci"
  if [ -w /usr/local/lib ]; then root=/usr/local/lib/corral-ci; fi
  local dir="$root/node-$major-$arch"
  if [ ! -x "$dir/bin/node" ]; then
    local tmp
    tmp=$(mktemp -d)
    (cd "$tmp" && npm pack --silent "node-linux-$arch@$major" >/dev/null && tar xzf node-linux-*.tgz)
    mkdir -p "$(dirname "$dir")"
    rm -rf "$dir"
    mv "$tmp/package" "$dir"
    rm -rf "$tmp"
  fi
  echo "$dir"
}

# True when the node on PATH is one corral supports.
node_supported() {
  node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 22 || (a === 22 && b >= 12) ? 0 : 1)'
}

# Puts Node.js $1 first on PATH (and tells node-gyp where its headers are).
use_node() {
  local dir
  dir=$(lts_node_dir "$1")
  export PATH="$dir/bin:$PATH" npm_config_nodedir="$dir"
}
