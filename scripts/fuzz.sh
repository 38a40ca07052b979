#!/usr/bin/env bash
# Runs every cargo-fuzz target for a bounded time (nightly toolchain; not part of CI, which
# stays on stable). Crashes land in fuzz/artifacts/<target>/; turn each into a regression test.
#
#   scripts/fuzz.sh [seconds-per-target] [target ...]
#
# Targets: json_patch, traits, hash_format, config, form. Seeds are in fuzz/seeds/<target>/;
# the growing corpus is kept in fuzz/corpus/<target>/ (ignored by git).
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-60}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(json_patch traits hash_format config form)
fi
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
cargo +nightly fuzz build
for t in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$t"
  start=$(date +%s)
  cargo +nightly fuzz run "$t" "fuzz/corpus/$t" "fuzz/seeds/$t" -- \
    -max_total_time="$secs" -max_len=65536 -rss_limit_mb=4096 -print_final_stats=1 2>&1 |
    grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|Done|==[0-9]+==|SUMMARY)' || true
  status=${PIPESTATUS[0]}
  echo "fuzz $t: ${secs}s budget, ran $(( $(date +%s) - start ))s, exit $status, corpus $(ls "fuzz/corpus/$t" | wc -l) inputs"
  if [ "$status" -ne 0 ]; then
    echo "fuzz $t found a crash: see fuzz/artifacts/$t/" >&2
    exit "$status"
  fi
done
