#!/usr/bin/env python3
"""Generates tests/vectors/mailgun.json: a Mailgun JSON webhook signed as Mailgun documents it
(https://documentation.mailgun.com/docs/mailgun/user-manual/webhooks/securing-webhooks):
hex HMAC-SHA256 of timestamp + token (no separator) under the webhook signing key, the
signature object beside `event-data` in the JSON body. Standard library only, as the
documentation's own snippets are; the token is random, so the file changes on every run.

    python3 scripts/vectors/mailgun.py
"""

import hashlib
import hmac
import json
import os
import secrets
import string

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "..", "tests", "vectors", "mailgun.json")
SIGNING_KEY = "key-" + "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(32))
TIMESTAMP = "1767225600"  # 2026-01-01T00:00:00Z


def main():
    token = "".join(secrets.choice(string.hexdigits.lower()[:16]) for _ in range(50))
    signature = hmac.new(
        SIGNING_KEY.encode(), (TIMESTAMP + token).encode(), hashlib.sha256
    ).hexdigest()
    body = {
        "signature": {"timestamp": TIMESTAMP, "token": token, "signature": signature},
        "event-data": {
            "event": "delivered",
            "id": "CPgfbmQMTCKtHW6uIWtuVe",
            "timestamp": 1767225600.0,
            "recipient": "alice@example.com",
            "message": {"headers": {"subject": "Caf\u00e9 \u2713"}},
        },
    }
    doc = {
        "provider": "mailgun",
        "source": "Python hmac per Mailgun's 'Securing Webhooks' (HMAC-SHA256, hex)",
        "signing_key": SIGNING_KEY,
        "now": int(TIMESTAMP) + 30,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(body, indent=2, ensure_ascii=False),
        "generated_by": "scripts/vectors/mailgun.py",
    }
    with open(OUT, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=2, ensure_ascii=False)
        f.write("\n")
    print("wrote", os.path.relpath(OUT))


main()
