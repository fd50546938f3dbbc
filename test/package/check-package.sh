#!/usr/bin/env bash
# The package as a user gets it: pack the tarball (prepack builds dist/), check its contents,
# lint it (publint, arethetypeswrong with the ESM-only profile), install it into an empty
# project next to the user's own kysely and better-sqlite3, and run the README example from
# it, as plain ESM (.mjs) and type-checked in a strict NodeNext TypeScript project, once per
# kysely version below (the lowest and the newest supported). Then the command line from the
# tarball (test/package/cli-check.mjs) against SQLite and PostgreSQL.
#
# One consumer project is installed once (better-sqlite3's native binary is the one the repo's
# install built; see below); kysely versions are switched with `npm i kysely@X`. Run from anywhere:
#   bash test/package/check-package.sh
# Environment: LQ_PG_URL (default postgres://postgres@127.0.0.1:5432/test) for the CLI check;
# LQ_KEEP_CONSUMER=1 keeps the temp folder and prints its path.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo"

# The lowest kysely that works (0.27 lacks operation nodes the compiler builds), the newest
# for Node 20, and the newest overall (0.29 declares Node 22 but runs here).
KYSELY_VERSIONS=(0.28.0 0.28.20 0.29.9)

work="$(mktemp -d "${TMPDIR:-/tmp}/lineage-query-package-check-XXXXXX")"
cleanup() {
  if [ "${LQ_KEEP_CONSUMER:-}" = "1" ]; then echo "kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

started=$SECONDS
step() { echo "== package check ($((SECONDS - started)) s): $*"; }
fail() { echo "error: package check: $*" >&2; exit 1; }
dev_version() { node -p "require('./package.json').devDependencies['$1']"; }

# ---------------------------------------------------------------- pack
step "npm pack (prepack builds dist/)"
version="$(node -p "require('./package.json').version")"
npm pack --pack-destination "$work" >"$work/pack.log" 2>&1 || { cat "$work/pack.log"; fail "npm pack failed"; }
tarball="$work/lineage-query-$version.tgz"
[ -f "$tarball" ] || { cat "$work/pack.log"; fail "npm pack wrote no $tarball"; }

contents="$(tar tzf "$tarball")"
bins="$(node -p "Object.values(require('./package.json').bin ?? {}).map((b) => 'package/' + b.replace(/^\\.\\//, '')).join(' ')")"
for must in package/package.json package/LICENSE package/README.md package/dist/index.js package/dist/index.d.ts $bins; do
  grep -qx "$must" <<<"$contents" || fail "the tarball has no $must"
done
if grep -q '\.map$' <<<"$contents"; then fail "the tarball ships source maps, which would point at src/ (not shipped): $(grep '\.map$' <<<"$contents" | head -3)"; fi
if grep -qE '^package/(src|test|bench|examples)/' <<<"$contents"; then fail "the tarball ships development folders: $(grep -E '^package/(src|test|bench|examples)/' <<<"$contents" | head -3)"; fi
echo "tarball: $(basename "$tarball"), $(wc -l <<<"$contents") files"

# ---------------------------------------------------------------- lint
step "publint"
node_modules/.bin/publint run "$tarball" --strict
step "arethetypeswrong (esm-only profile)"
node_modules/.bin/attw "$tarball" --profile esm-only

# ---------------------------------------------------------------- consumer project
consumer="$work/consumer"
mkdir -p "$consumer"
cat >"$consumer/package.json" <<'JSON'
{
  "name": "lineage-query-consumer",
  "private": true,
  "type": "module",
  "allowScripts": { "better-sqlite3": true }
}
JSON
cat >"$consumer/tsconfig.json" <<'JSON'
{
  "compilerOptions": {
    "target": "ES2022",
    "lib": ["ES2022"],
    "module": "NodeNext",
    "moduleResolution": "NodeNext",
    "strict": true,
    "noEmit": true,
    "types": ["node"]
  },
  "include": ["*.ts", "*.mts"]
}
JSON

# The README's first ```ts block is the example; the ``` block after it is its output.
node - "$repo/README.md" "$consumer" <<'JS'
const fs = require('node:fs')
const [readme, dir] = process.argv.slice(2)
const text = fs.readFileSync(readme, 'utf8')
const blocks = [...text.matchAll(/```(\w*)\n([\s\S]*?)```/g)]
const i = blocks.findIndex((b) => b[1] === 'ts')
if (i < 0 || blocks[i + 1] === undefined || blocks[i + 1][1] !== '') throw new Error('README: expected a ```ts example followed by a plain ``` output block')
const code = blocks[i][2]
fs.writeFileSync(`${dir}/readme-example.ts`, code)
// Plain ESM: the example's only TypeScript syntax is the type argument of `new Kysely<any>`.
const js = code.replace(/new Kysely<any>\(/g, 'new Kysely(')
if (/<any>|: [A-Z]\w*</.test(js)) throw new Error('README example: TypeScript syntax left after stripping `<any>`; extend the conversion')
fs.writeFileSync(`${dir}/readme-example.mjs`, js)
fs.writeFileSync(`${dir}/readme-example.expected`, blocks[i + 1][2])
JS
cp "$repo/test/package/consumer-schema.ts" "$consumer/" 2>/dev/null || true

# better-sqlite3's install script compiles it from source (75 s on an idle 2-core machine, many
# minutes on a loaded one). lineage-query has no install script, so the consumer installs with
# --ignore-scripts and takes the binary the repo's own install built for the same pinned
# better-sqlite3 version and the same Node (`npm rebuild` there if the repo has none).
step "install the tarball into an empty project"
(
  cd "$consumer"
  npm install --ignore-scripts --no-audit --no-fund --loglevel=error \
    "$tarball" "kysely@${KYSELY_VERSIONS[0]}" "better-sqlite3@$(cd "$repo" && dev_version better-sqlite3)" \
    "pg@$(cd "$repo" && dev_version pg)" "pg-cursor@$(cd "$repo" && dev_version pg-cursor)" \
    "@types/better-sqlite3@$(cd "$repo" && dev_version @types/better-sqlite3)" "@types/node@$(cd "$repo" && dev_version @types/node)" \
    "@types/pg@$(cd "$repo" && dev_version @types/pg)" "@viz-js/viz@$(cd "$repo" && dev_version @viz-js/viz)"
) || fail "npm install of the tarball into an empty project failed"
native="node_modules/better-sqlite3/build/Release/better_sqlite3.node"
if [ -f "$repo/$native" ]; then
  mkdir -p "$consumer/$(dirname "$native")"
  cp "$repo/$native" "$consumer/$native"
else
  (cd "$consumer" && npm rebuild better-sqlite3 --foreground-scripts) || fail "npm rebuild better-sqlite3 failed"
fi
for dep in better-sqlite3 pg kysely; do
  if [ -d "$consumer/node_modules/lineage-query/node_modules/$dep" ]; then fail "the package brought its own copy of $dep"; fi
done

for kv in "${KYSELY_VERSIONS[@]}"; do
  step "kysely $kv: README example (.mjs) and strict NodeNext TypeScript"
  (cd "$consumer" && npm install --ignore-scripts --no-audit --no-fund --loglevel=error "kysely@$kv") || fail "npm install kysely@$kv failed"
  got="$(node -p "require('$consumer/node_modules/kysely/package.json').version")"
  [ "$got" = "$kv" ] || fail "installed kysely $got, wanted $kv"
  copies="$(find "$consumer/node_modules" -name package.json -path '*/kysely/package.json' -not -path '*/kysely/*/kysely/*' | wc -l)"
  [ "$copies" = "1" ] || fail "$copies copies of kysely in the consumer project (want 1: the user's)"
  (cd "$consumer" && node readme-example.mjs >readme-example.out) || fail "kysely $kv: the README example failed as .mjs"
  diff -u "$consumer/readme-example.expected" "$consumer/readme-example.out" || fail "kysely $kv: the README example's output differs from the README"
  (cd "$consumer" && "$repo/node_modules/.bin/tsc" -p tsconfig.json) || fail "kysely $kv: strict NodeNext type check of the README example failed"
done

# ---------------------------------------------------------------- command line
if [ -f "$repo/test/package/cli-check.mjs" ]; then
  step "the lineage-query binary from the tarball, SQLite and PostgreSQL"
  node "$repo/test/package/cli-check.mjs" "$consumer" || fail "the command line check failed"
fi

step "passed"
