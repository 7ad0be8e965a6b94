#!/usr/bin/env bash
# Regenerates the committed seed corpora, fuzz/corpus/<target>/seed-*, from
# examples/ (see fuzz/examples/seed.rs for what each target gets). Inputs
# libFuzzer found (not named seed-*) are left alone. Any toolchain builds
# the generator; it is not a fuzz target and needs no sanitizer.
set -euo pipefail
cd "$(dirname "$0")"
rm -f corpus/*/seed-*
cargo run --locked -q --example seed -- corpus
ls corpus | while read -r target; do
  echo "corpus/$target: $(ls corpus/"$target" | grep -c '^seed-') seeds, $(cat corpus/"$target"/seed-* | wc -c) bytes"
done
