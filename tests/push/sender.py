#!/usr/bin/env python3
"""An independent Web Push sender, for testing the tests' own push service.

Owns: one push built the way a third-party application server would — payload
encrypted with PyPI's `http_ece` (RFC 8291 aes128gcm), a VAPID JWT (RFC 8292)
signed with `cryptography` by a fresh P-256 key — POSTed to a subscription's
endpoint. Used by crates/quicktalk/tests/process/push.rs to show that
tests/common/push_service.rs accepts (and decrypts) what another implementation
sends, and rejects it when the JWT is wrong.

stdin: one JSON object
  {"endpoint": "http://127.0.0.1:PORT/push/NAME",
   "p256dh": b64url uncompressed point, "auth": b64url,
   "payload": any JSON (sent as its compact encoding),
   "exp_in": optional seconds from now for the JWT's exp (default 3600),
   "aud": optional aud (default: the endpoint's origin)}
stdout: {"status": HTTP status, "vapid_key": the k sent}
exit 0 when the request was answered at all; non-zero on any local failure.
"""

import base64
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import http_ece
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def point(key):
    return key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


def main():
    req = json.load(sys.stdin)
    endpoint = req["endpoint"]
    parts = urllib.parse.urlsplit(endpoint)
    aud = req.get("aud") or "%s://%s" % (parts.scheme, parts.netloc)

    ephemeral = ec.generate_private_key(ec.SECP256R1())
    body = http_ece.encrypt(
        json.dumps(req["payload"], separators=(",", ":")).encode("utf-8"),
        salt=os.urandom(16),
        private_key=ephemeral,
        dh=unb64url(req["p256dh"]),
        auth_secret=unb64url(req["auth"]),
        version="aes128gcm",
    )

    vapid = ec.generate_private_key(ec.SECP256R1())
    head = b64url(json.dumps({"typ": "JWT", "alg": "ES256"}).encode())
    claims = {
        "aud": aud,
        "exp": int(time.time()) + int(req.get("exp_in", 3600)),
        "sub": "mailto:ops@quicktalk.test",
    }
    signing_input = head + "." + b64url(json.dumps(claims).encode())
    r, s = decode_dss_signature(
        vapid.sign(signing_input.encode("ascii"), ec.ECDSA(hashes.SHA256()))
    )
    jwt = signing_input + "." + b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))
    k = b64url(point(vapid))

    request = urllib.request.Request(
        endpoint,
        data=body,
        method="POST",
        headers={
            "Content-Encoding": "aes128gcm",
            "Content-Type": "application/octet-stream",
            "TTL": "120",
            "Urgency": "normal",
            "Authorization": "vapid t=%s, k=%s" % (jwt, k),
        },
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=20) as resp:
            status = resp.status
    except urllib.error.HTTPError as e:
        status = e.code
    json.dump({"status": status, "vapid_key": k}, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    try:
        main()
    except Exception as e:
        sys.stderr.write("sender failed: %s: %s\n" % (type(e).__name__, e))
        sys.exit(1)
