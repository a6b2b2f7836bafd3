#!/bin/sh
# Seeds the corpora of the three fuzz targets with every .scl file shipped in the
# repository (examples, stdlib, UI cases, run tests). Run from anywhere.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
for target in parse check compile; do
    mkdir -p "$root/fuzz/corpus/$target"
    find "$root/examples" "$root/stdlib" "$root/tests/ui" "$root/tests/run" -name '*.scl' -type f |
    while read -r f; do
        # Name each seed after its path, so reseeding overwrites rather than duplicates.
        name=$(printf '%s' "${f#"$root"/}" | tr '/' '_')
        cp "$f" "$root/fuzz/corpus/$target/seed_$name"
    done
done
echo "seeded $(ls "$root/fuzz/corpus/parse" | wc -l) files per target"
