#!/usr/bin/env bash
# Builds the agent's MSI from a Windows build of ringfence-agent.exe, on Linux, with wixl and
# msibuild (Debian's wixl and msitools packages).
#   packaging/windows/build-msi.sh path/to/ringfence-agent.exe OUT.msi
set -euo pipefail
exe=$(realpath "$1")
out=$(realpath -m "$2")
here=$(cd "$(dirname "$0")" && pwd)
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$here/../../Cargo.toml" | head -n 1)
for tool in wixl msibuild; do
  command -v "$tool" >/dev/null || { echo "$tool is missing: install Debian's wixl and msitools" >&2; exit 1; }
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# wixl takes sources relative to the working folder.
cp "$exe" "$work/ringfence-agent.exe"
(cd "$work" && wixl -a x64 -D "Version=$version" -D AgentExe=ringfence-agent.exe -o agent.msi "$here/ringfence-agent.wxs")
# Public properties an unprivileged or managed install may pass to the elevated part.
msibuild "$work/agent.msi" -q "UPDATE \`Property\` SET \`Value\` = 'OLDERVERSIONFOUND;SERVER_URL;ENROLL_TOKEN' WHERE \`Property\` = 'SecureCustomProperties'"
mv "$work/agent.msi" "$out"
echo "built $out (version $version)"
