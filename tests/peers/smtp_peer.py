"""A receiving SMTP server for moat-remote's tests, on aiosmtpd (Debian python3-aiosmtpd).

Usage: smtp_peer.py PORT OUT_DIR [CERT KEY]
Recipients decide the answer by their local part: ok* -> 250, perm* -> 550 5.1.1,
temp* -> 451 4.3.0. Each accepted message is saved as OUT_DIR/<n>.eml (the bytes after
dot-unstuffing) and OUT_DIR/<n>.env (MAIL FROM, then one RCPT per line). With CERT and KEY,
STARTTLS is offered. Prints "ready" when listening.
"""
import os
import ssl
import sys
import time

from aiosmtpd.controller import Controller


class Handler:
    def __init__(self, out):
        self.out = out
        self.n = 0

    async def handle_RCPT(self, server, session, envelope, address, options):
        local = address.split("@")[0].lower()
        if local.startswith("perm"):
            return "550 5.1.1 no such user here"
        if local.startswith("temp"):
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 ok"

    async def handle_DATA(self, server, session, envelope):
        self.n += 1
        base = os.path.join(self.out, str(self.n))
        with open(base + ".tmp", "wb") as f:
            f.write(envelope.original_content)
        with open(base + ".env", "w") as f:
            f.write(envelope.mail_from + "\n" + "\n".join(envelope.rcpt_tos) + "\n")
        os.rename(base + ".tmp", base + ".eml")
        return "250 2.0.0 queued as %d" % self.n


def main():
    port, out = int(sys.argv[1]), sys.argv[2]
    kwargs = {}
    if len(sys.argv) > 4:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(sys.argv[3], sys.argv[4])
        kwargs["tls_context"] = ctx
    c = Controller(Handler(out), hostname="127.0.0.1", port=port, **kwargs)
    c.start()
    print("ready", flush=True)
    try:
        while True:
            time.sleep(3600)
    finally:
        c.stop()


main()
