#!/usr/bin/env bash
# The RDS CA bundle the MySQL export ships (certs/update.sh made it): every certificate parses, is
# an Amazon root (RDS's, and Amazon Trust Services' and its Starfield root for RDS Proxy), and none expires within 90 days (time to run update.sh and redeploy).
set -euo pipefail
pem="$(dirname "$0")/rds-ca-bundle.pem"
[ -s "$pem" ] || { echo "certs/check: $pem is missing; run bash certs/update.sh" >&2; exit 1; }
python3 - "$pem" <<'PY'
import re, subprocess, sys
pems = re.findall(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", open(sys.argv[1]).read(), re.S)
if len(pems) < 20:
    sys.exit(f"certs/check: only {len(pems)} certificates in {sys.argv[1]}")
for pem in pems:
    subject = subprocess.run(["openssl", "x509", "-noout", "-subject"], input=pem,
                             capture_output=True, text=True, check=True).stdout.strip()
    if "Amazon" not in subject and "Starfield Services Root" not in subject:
        sys.exit(f"certs/check: not an Amazon root: {subject}")
    if subprocess.run(["openssl", "x509", "-noout", "-checkend", str(90 * 86400)], input=pem.encode(),
                      capture_output=True).returncode != 0:
        sys.exit(f"certs/check: expires within 90 days: {subject}; run bash certs/update.sh")
print(f"certs/check: {len(pems)} RDS root certificates, none expiring within 90 days")
PY
