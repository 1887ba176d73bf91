#!/usr/bin/env bash
# Times the Windows agent's inventory on a machine with N registered programs, under Wine:
#   packaging/windows/bench-inventory.sh [N] [RUNS] [path/to/ringfence-agent.exe]
# N programs are written to the Uninstall keys (half in the 64-bit view, a quarter in the
# 32-bit view, a quarter in a user's hive) with one regedit import, then
# `ringfence-agent.exe inventory --format json` runs RUNS times; each run's wall time and the
# programs collector's own time (as the agent measures it) are printed, the medians last.
# Wine's process start is part of every run's wall time.
set -euo pipefail
n=${1:-300}
runs=${2:-11}
here=$(cd "$(dirname "$0")" && pwd)
exe=${3:-$here/../../target/x86_64-pc-windows-gnu/release/ringfence-agent.exe}
[ -f "$exe" ] || { echo "$exe is missing: cargo build --release -p ringfence-agent --target x86_64-pc-windows-gnu" >&2; exit 1; }
export WINEPREFIX=$(mktemp -d)/prefix
trap 'wineserver -k 2>/dev/null || true; rm -rf "$(dirname "$WINEPREFIX")"' EXIT
reg=$(dirname "$WINEPREFIX")/programs.reg
{
  printf 'REGEDIT4\r\n\r\n'
  for i in $(seq 1 "$n"); do
    case $((i % 4)) in
      0|1) key='HKEY_LOCAL_MACHINE\Software\Microsoft\Windows\CurrentVersion\Uninstall' ;;
      2) key='HKEY_LOCAL_MACHINE\Software\Wow6432Node\Microsoft\Windows\CurrentVersion\Uninstall' ;;
      3) key='HKEY_USERS\S-1-5-21-0-0-0-1000\Software\Microsoft\Windows\CurrentVersion\Uninstall' ;;
    esac
    printf '[%s\\Program%04d]\r\n"DisplayName"="Program %d (x64)"\r\n"DisplayVersion"="%d.%d.%d"\r\n"Publisher"="Vendor %d Ltd"\r\n"InstallDate"="20240101"\r\n"UninstallString"="C:\\\\Program Files\\\\P%d\\\\uninstall.exe"\r\n\r\n' \
      "$key" "$i" "$i" $((i % 30)) $((i % 7)) $((i % 100)) $((i % 50)) "$i"
  done
} > "$reg"
"$here/wine-run" regedit /S "$(winepath -w "$reg" 2>/dev/null || echo "$reg")" >/dev/null 2>&1 || "$here/wine-run" regedit /S "$reg"
count=$("$here/wine-run" "$exe" inventory --format json | grep -c '"display_name"')
echo "programs collected: $count (of $n written)"
times=()
registry=()
for _ in $(seq 1 "$runs"); do
  start=$(date +%s%N)
  json=$("$here/wine-run" "$exe" inventory --format json)
  end=$(date +%s%N)
  ms=$(( (end - start) / 1000000 ))
  # The programs collector's own time (registry reads, all views and hives).
  reg_ms=$(printf '%s' "$json" | python3 -c 'import json,sys; print(next(c["millis"] for c in json.load(sys.stdin)["collectors"] if c["collector"] == "programs"))')
  times+=("$ms")
  registry+=("$reg_ms")
  echo "run: ${ms} ms in all, programs collector ${reg_ms} ms"
done
reg_median=$(printf '%s\n' "${registry[@]}" | sort -n | sed -n "$(( (runs + 1) / 2 ))p")
median=$(printf '%s\n' "${times[@]}" | sort -n | sed -n "$(( (runs + 1) / 2 ))p")
# Wine's own start, for comparison: the same program doing nothing but print its version.
base=()
for _ in $(seq 1 "$runs"); do
  start=$(date +%s%N)
  "$here/wine-run" "$exe" --version >/dev/null
  end=$(date +%s%N)
  base+=($(( (end - start) / 1000000 )))
done
base_median=$(printf '%s\n' "${base[@]}" | sort -n | sed -n "$(( (runs + 1) / 2 ))p")
echo "median: ${median} ms for $count programs (under Wine, process start included)"
echo "median of --version alone (Wine's process start): ${base_median} ms"
echo "median of the programs collector (registry, $count programs): ${reg_median} ms"
