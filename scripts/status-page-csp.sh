#!/usr/bin/env bash
# Rewrites the script hash in the status page's Content-Security-Policy (exporter/src/status_page.html)
# after the page's inline script changed: the browser runs the script only if its sha256 matches.
#   scripts/status-page-csp.sh          rewrite the hash in place
#   scripts/status-page-csp.sh --check  exit 1 if the hash is stale
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
exec python3 - "$ROOT/exporter/src/status_page.html" "${1:-}" <<'PY'
import base64, hashlib, re, sys
path, mode = sys.argv[1], sys.argv[2]
text = open(path, encoding="utf-8").read()
scripts = re.findall(r"<script>(.*?)</script>", text, re.S)
if len(scripts) != 1:
    sys.exit(f"{path}: expected exactly one inline <script>, found {len(scripts)}")
digest = base64.b64encode(hashlib.sha256(scripts[0].encode("utf-8")).digest()).decode()
new, n = re.subn(r"script-src 'sha256-[^']*'", f"script-src 'sha256-{digest}'", text)
if n != 1:
    sys.exit(f"{path}: no script-src 'sha256-...' in the Content-Security-Policy")
if mode == "--check":
    if new != text:
        sys.exit(f"{path}: the CSP script hash is stale: run scripts/status-page-csp.sh")
elif new != text:
    open(path, "w", encoding="utf-8").write(new)
    print(f"{path}: script-src 'sha256-{digest}'")
PY
