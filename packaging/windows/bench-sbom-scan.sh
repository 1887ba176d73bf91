#!/usr/bin/env bash
# Times `ringfence scan` of a 300-component CycloneDX SBOM of a Windows 11 23H2 laptop:
#   packaging/windows/bench-sbom-scan.sh [RUNS]
# The SBOM holds the OS component (with its CPE), the real program names and versions of
# crates/matcher/tests/data/program-cases.tsv, and line-of-business programs up to 300. The
# database is filled from ../shared/data/nvd and kev. Each run is a whole process: open the
# database, load the index, read the SBOM, match, print.
set -euo pipefail
runs=${1:-11}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
bin=$repo/target/release/ringfence
[ -x "$bin" ] || { echo "$bin is missing: cargo build --release -p ringfence-cli" >&2; exit 1; }
data=$repo/../shared/data
[ -d "$data/nvd/records" ] || { echo "$data is missing (see README.md)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 - "$repo/crates/matcher/tests/data/program-cases.tsv" "$work/windows-300.json" <<'PY'
import json, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip() and not l.startswith("#")]
components = [{"type": "operating-system", "name": "Microsoft Windows 11 Pro", "version": "10.0.22631.3155",
               "cpe": "cpe:2.3:o:microsoft:windows_11_23h2:10.0.22631.3155:*:*:*:*:*:*:*"}]
components += [{"type": "application", "name": r[0], "version": r[2], "publisher": r[1]} for r in rows]
k = 0
while len(components) < 301:
    components.append({"type": "application", "name": f"Line-of-business App {k}",
                       "version": f"{k % 9}.{k % 5}.{k}", "publisher": f"Contoso Division {k % 40}"})
    k += 1
json.dump({"bomFormat": "CycloneDX", "specVersion": "1.6", "components": components}, open(sys.argv[2], "w"))
PY
"$bin" feeds import --db "$work/nvd.db" "$data/nvd/records" "$data/kev/known_exploited_vulnerabilities.json" >/dev/null
"$bin" scan --db "$work/nvd.db" --inventory "$work/windows-300.json" | head -n 1
times=()
for _ in $(seq 1 "$runs"); do
  start=$(date +%s%N)
  "$bin" scan --db "$work/nvd.db" --inventory "$work/windows-300.json" >/dev/null
  end=$(date +%s%N)
  times+=($(( (end - start) / 1000000 )))
done
echo "runs (ms): ${times[*]}"
echo "median: $(printf '%s\n' "${times[@]}" | sort -n | sed -n "$(( (runs + 1) / 2 ))p") ms"
