"""A stand-in for the Lambda Runtime API (one invocation) and for Secrets Manager's
GetSecretValue, so a function's real release binary runs end to end with no AWS, no Docker and no
cargo-lambda (README, "Run a function's binary with no AWS").

    python3 tools/lambda-standin.py EVENT.json PORT OUT.json

serves EVENT.json to the first `invocation/next`, writes the function's response (or error) to
OUT.json and exits. Point the binary at it with AWS_LAMBDA_RUNTIME_API=127.0.0.1:PORT; with
AWS_ENDPOINT_URL_SECRETS_MANAGER=http://127.0.0.1:PORT, GetSecretValue answers FAKE_SECRET_STRING.
"""
import json, os, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

event_path, port, out_path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
secret = os.environ.get("FAKE_SECRET_STRING", "")
served = {"n": 0}

class H(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass
    def _reply(self, code, body=b"", headers=None):
        self.send_response(code)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        if self.path.endswith("/runtime/invocation/next"):
            if served["n"] > 0:
                time.sleep(3600)
            served["n"] += 1
            body = open(event_path, "rb").read()
            self._reply(200, body, {
                "Lambda-Runtime-Aws-Request-Id": "trial-0001",
                "Lambda-Runtime-Deadline-Ms": str(int(time.time() * 1000) + 60000),
                "Lambda-Runtime-Invoked-Function-Arn": "arn:aws:lambda:us-east-1:123456789012:function:trial",
                "Content-Type": "application/json"})
        else:
            self._reply(404)
    def do_POST(self):
        n = int(self.headers.get("Content-Length", 0))
        body = self.rfile.read(n)
        target = self.headers.get("X-Amz-Target", "")
        if target == "secretsmanager.GetSecretValue":
            req = json.loads(body or b"{}")
            with open(out_path + ".secret-calls", "a") as f:
                f.write(req.get("SecretId", "") + "\n")
            self._reply(200, json.dumps({"ARN": req.get("SecretId"), "Name": "slack", "SecretString": secret}).encode(),
                        {"Content-Type": "application/x-amz-json-1.1"})
            return
        kind = "response" if self.path.endswith("/response") else "error"
        with open(out_path, "w") as f:
            json.dump({"kind": kind, "path": self.path, "body": body.decode()}, f)
        self._reply(202, b"{}")
        threading.Thread(target=lambda: (time.sleep(0.3), os._exit(0))).start()

ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
