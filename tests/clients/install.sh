#!/usr/bin/env bash
# Installs the official Segment clients used by the server tests into project-local folders
# (.test-deps/, git-ignored): segment-analytics-python from PyPI and @segment/analytics-node
# from npm. Idempotent: a client already installed at the pinned version is left alone.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY_VERSION="2.4.0"
NODE_VERSION="3.1.0"
deps=".test-deps"
mkdir -p "$deps"

python="${PYTHON:-python3}"
if ! "$python" -c "import sys; sys.path.insert(0, '$deps/python'); import segment.analytics, segment.analytics.version as v; assert v.VERSION == '$PY_VERSION'" 2>/dev/null; then
    echo "== installing segment-analytics-python $PY_VERSION into $deps/python"
    "$python" -m pip install --quiet --disable-pip-version-check --no-input \
        --target "$deps/python" --upgrade "segment-analytics-python==$PY_VERSION"
fi

if [ ! -f "$deps/node/node_modules/@segment/analytics-node/package.json" ] ||
    ! grep -q "\"version\": \"$NODE_VERSION\"" "$deps/node/node_modules/@segment/analytics-node/package.json"; then
    echo "== installing @segment/analytics-node $NODE_VERSION into $deps/node"
    mkdir -p "$deps/node"
    npm install --silent --no-audit --no-fund --prefix "$deps/node" "@segment/analytics-node@$NODE_VERSION"
fi
